#!/usr/bin/env python3
"""Compare latmove's hand-written Isolation Forest with scikit-learn's.

Usage (pandas and scikit-learn installed with pip):
    latmove synth -o /tmp/day.csv
    latmove detect /tmp/day.csv --features seed --window none --folds 1 --prior-flows 0 \
        --sklearn-paths --no-orient --no-charts --out /tmp/lm
    python3 bench/compare_sklearn.py /tmp/lm/host_scores.csv

Fits scikit-learn's StandardScaler + IsolationForest (100 trees, 256 samples,
contamination 0.01) on the same benign hosts' seed features that latmove
wrote, scores every host, and prints how close the two are. The random
streams differ, so scores cannot be equal; the yardstick is how much
scikit-learn differs from itself between seeds.
"""
import sys

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

FEATURES = ["unique_dst_ips", "unique_dst_ports", "flow_count", "mean_duration_us"]

d = pd.read_csv(sys.argv[1])
train = d[d.label == "benign"][FEATURES].values
scaler = StandardScaler().fit(train)
runs = []
for seed in range(3):
    m = IsolationForest(n_estimators=100, max_samples=256, contamination=0.01, random_state=seed)
    m.fit(scaler.transform(train))
    runs.append((-m.score_samples(scaler.transform(d[FEATURES].values)), m))
sk, model = runs[0]
print(f"hosts {len(d)}, benign training hosts {len(train)}")
print(f"Pearson r latmove vs scikit-learn (seed 0): {np.corrcoef(sk, d.score)[0, 1]:.4f}")
print(f"Spearman rho: {pd.Series(sk).rank().corr(d.score.rank()):.4f}")
print(f"mean |score difference| latmove vs scikit-learn: {np.mean(np.abs(sk - d.score)):.4f}")
print(f"mean |score difference| scikit-learn seed 0 vs 1: {np.mean(np.abs(runs[0][0] - runs[1][0])):.4f}")
flagged = (model.predict(scaler.transform(d[FEATURES].values)) == -1).sum()
print(f"flagged: scikit-learn {flagged}, latmove {int(d.flagged.sum())}")
