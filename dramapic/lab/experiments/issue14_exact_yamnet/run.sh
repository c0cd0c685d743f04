#!/usr/bin/env bash
# The product's cross-corpus protocol for a grid of two clustering knobs (issue 14), after YAMNet became exact on
# every CPU: one `dramapic eval --cross-corpus` per setting, each with a copy of pipelines/default.yaml in which
# only speakers.cluster_same_probability and speakers.min_speaker_share differ. About 3.3 min a run on the
# session's 2-core machine once the voice window table and the timelines are cached in WORK (the first run builds
# them: 9 min); never two at once (thread oversubscription slows both tenfold). Then: python lofo.py OUT
# results.txt holds 11 of the 12 points (ps0.55_sh0.40 was stopped for time).
#
#   bash run.sh ../shared/data WORK OUT
set -euo pipefail
data=$1 work=$2 out=$3
repo=$(cd "$(dirname "$0")/../../../.." && pwd)
mkdir -p "$out"
for ps in 0.40 0.45 0.50 0.55; do
  for share in 0.30 0.35 0.40; do
    name="ps${ps}_sh${share}"
    sed -e "s/^  cluster_same_probability: [0-9.]* /  cluster_same_probability: $ps /" \
        -e "s/^  min_speaker_share: [0-9.]* /  min_speaker_share: $share /" \
        "$repo/pipelines/default.yaml" > "$out/p_$name.yaml"
    [ -f "$out/xc_$name.json" ] && continue
    dramapic eval --cross-corpus --data "$data" --work "$work" --mixes "$data/dev_mixes" \
        --pipeline "$out/p_$name.yaml" --json "$out/xc_$name.json" --no-progress > "$out/$name.log"
  done
done
