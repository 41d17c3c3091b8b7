#!/usr/bin/env python3
"""The reference pipeline latmove is measured against: the seed recipe.

pandas read_csv (only the needed columns), groupby('Source IP').agg(...),
scikit-learn's StandardScaler and IsolationForest trained on benign hosts.
Usage: python3 bench/reference.py FILE.csv
"""
import sys

import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

path = sys.argv[1]
cols = [" Source IP", " Destination IP", " Destination Port", " Flow Duration", " Label"]
df = pd.read_csv(path, usecols=cols, encoding="latin-1", low_memory=False)
df.columns = [c.strip() for c in df.columns]
df = df.dropna(subset=["Source IP"])
df["attack"] = df["Label"].str.strip().str.upper() != "BENIGN"
hosts = df.groupby("Source IP").agg(
    unique_dst_ips=("Destination IP", "nunique"),
    unique_dst_ports=("Destination Port", "nunique"),
    flow_count=("Destination IP", "size"),
    mean_duration=("Flow Duration", "mean"),
    attack=("attack", "max"),
)
features = ["unique_dst_ips", "unique_dst_ports", "flow_count", "mean_duration"]
benign = hosts[~hosts.attack]
scaler = StandardScaler().fit(benign[features])
forest = IsolationForest(n_estimators=100, max_samples=256, contamination=0.01, random_state=42)
forest.fit(scaler.transform(benign[features]))
hosts["flagged"] = forest.predict(scaler.transform(hosts[features])) == -1
tp = int((hosts.flagged & hosts.attack).sum())
print(f"hosts {len(hosts)} attack {int(hosts.attack.sum())} flagged {int(hosts.flagged.sum())} tp {tp}")
