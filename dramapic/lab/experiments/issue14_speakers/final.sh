#!/bin/bash
# Final fits on the complete clip cache and the figures of RESULTS.md. Usage: bash final.sh DIM TAG
cd "$(dirname "$0")"
export PYTHONPATH=/work/base:/work/exp14d OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
DIM=${1:-100}; TAG=${2:-final}
PY="nice -n 10 /work/venv/bin/python"
start=$(date +%s)
bash train_all.sh $DIM none proj_$TAG > proj_$TAG.log 2>&1
echo "train_all: $(( $(date +%s) - start )) s wall for 10 fits" >> proj_$TAG.log
V="constrained_share15@calib constrained_share15@0.85 constrained_share15@0.90"
$PY eval_xc.py --proj-dir proj_$TAG --variants $V --json results/xc_$TAG.json 2>&1 | grep -v -i warn > results/xc_$TAG.txt
$PY eval_dev.py --projection proj_$TAG/all.npz --variants $V 2>&1 | grep -v -i warn > results/dev_$TAG.txt
