#!/bin/sh
# Issue 22's capacity runs of genred-default (runtime auto: the measured choice; 5 min each after a ~1-min warm-up;
# about 25 min in all). Run on an otherwise idle machine from the repository root; each run
# writes bench/results/<name>.json with the CPU model, flags, cores used and the 1-min load,
# and the last step rebuilds bench/README.md's table (capacity per machine included).
#   N2: sources on every core (goal >= 120); N1: sources on one core (goal >= 55);
#   the overload run is 1.5x N1 on one core (goal: per-batch inference within 1.5x of the
#   N1 run's, every source labelled at least every 3 hops: effective hop <= 3 hops).
set -eu
PY=${PY:-.venv/bin/python}
N2=${N2:-120}
N1=${N1:-55}
OVER=$((N1 * 3 / 2))
RUNTIME=${RUNTIME:-auto}
SECONDS_RUN=${SECONDS_RUN:-300}
CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //; s/[^A-Za-z0-9]\+/_/g')
run() {  # name, N, [taskset prefix...]
    name=$1; n=$2; shift 2
    echo "== $name: $n sources ($*) load $(cut -d' ' -f1 /proc/loadavg)"
    "$@" "$PY" -m bench.streams --model default --runtime "$RUNTIME" --only "$n" \
        --seconds "$SECONDS_RUN" --name "$name"
}
run "capacity_${CPU}_all_cores_${N2}" "$N2" env
run "capacity_${CPU}_1core_${N1}" "$N1" taskset -c 0
run "capacity_${CPU}_1core_overload_${OVER}" "$OVER" taskset -c 0
"$PY" -m bench.run_all --table-only
