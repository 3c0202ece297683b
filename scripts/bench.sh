#!/usr/bin/env bash
# make bench: measure dpc_elt on the embedded default against the single-pass limit (issue 8) and
# write bench/results.json + bench/results.md. Scales: BENCH_SCALES=S,M (default; add L, ≈4 GiB and
# tens of millions of EF rows, when you have the time). Generated data and run state: bench/data/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f include/dbt/target/manifest.json ] || scripts/dbt_manifest.sh
exec .venv/bin/python bench/run_bench.py "$@"
