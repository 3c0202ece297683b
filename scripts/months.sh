#!/usr/bin/env bash
# Print the months FROM..TO (yyyymm, inclusive), one per line: scripts/months.sh 202411 202502
set -euo pipefail
from=${1:?usage: months.sh FROM TO (yyyymm)}; to=${2:?usage: months.sh FROM TO (yyyymm)}
for m in "$from" "$to"; do
  [[ $m =~ ^(19|20)[0-9]{2}(0[1-9]|1[0-2])$ ]] || { echo "months.sh: $m is not a month yyyymm" >&2; exit 2; }
done
[ "$from" -le "$to" ] || { echo "months.sh: FROM $from is after TO $to" >&2; exit 2; }
y=${from:0:4}; m=$((10#${from:4:2}))
while :; do
  cur=$(printf '%04d%02d' "$y" "$m"); echo "$cur"
  [ "$cur" = "$to" ] && break
  m=$((m + 1)); if [ "$m" -gt 12 ]; then m=1; y=$((y + 1)); fi
done
