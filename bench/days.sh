# Sourced by bench/evidence.sh and bench/seeds.sh (with $work and $lm set):
# the evidence days in $work, each made once: the synthetic full Tuesday,
# the hard-case day and its benign baseline, and the hard day's allowlist.
[ -f "$work/day.csv.gz" ] || $lm synth --rows 445909 --seed 42 -o "$work/day.csv.gz" >/dev/null
[ -f "$work/hard.csv.gz" ] || $lm synth --scenario hard --rows 200000 --seed 7 -o "$work/hard.csv.gz" >/dev/null
[ -f "$work/hard-baseline.csv.gz" ] || $lm synth --scenario hard --benign-only --rows 200000 --seed 8 -o "$work/hard-baseline.csv.gz" >/dev/null
printf '# the organisation'"'"'s vulnerability scanner\n192.168.10.80\n' > "$work/allow.txt"
