#!/usr/bin/env bash
# The product's cross-corpus protocol with a voice prior: one `dramapic eval --cross-corpus` per shift, run through
# shifted.py (the shift is lab-only), default pipeline otherwise (3.3 min a run on 2 cores once WORK holds the window
# table and timelines; never two at once).
#
#   bash run_xc.sh ../shared/data WORK OUT
set -euo pipefail
data=$1 work=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
for v in 0.25 0.5; do
  python "$here/shifted.py" "{\"voice\": $v}" eval --cross-corpus --data "$data" --work "$work" \
      --mixes "$data/dev_mixes" --json "$out/xc_v$v.json" --no-progress > "$out/v$v.log"
done
