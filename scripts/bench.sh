#!/usr/bin/env bash
# make bench: measure dpc_elt on the embedded default against the limit (the least work any loader must
# do, on all cores) and a peer (a straightforward polars script), issue 14, and write bench/results.json +
# bench/results.md. Scales: BENCH_SCALES=S,M (default; add L, ≥ 4 GB, when you have the time); repeats:
# BENCH_REPEAT (default S=3,M=3,L=1); 12 small months through scripts/run_month.sh (BENCH_BACKFILL=0 skips them).
# Take numbers to keep on an idle machine: every measurement records the load it ran under.
# Generated data and run state: bench/data/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f include/dbt/target/manifest.json ] || scripts/dbt_manifest.sh
exec .venv/bin/python bench/run_bench.py "$@"
