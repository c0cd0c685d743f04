#!/bin/bash
# Every figure of RESULTS.md. Usage: bash run_evals.sh PROJDIR TAG   (PROJDIR from train_all.sh)
cd "$(dirname "$0")"
export PYTHONPATH=/work/base:/work/exp14d OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
P=${1:-proj}; TAG=${2:-run}
PY="nice -n 10 /work/venv/bin/python"
mkdir -p results
V="baseline baseline@calib constrained@calib constrained_share15@calib constrained_share15_noCL@calib nme_share15 constrained_share15@0.80 constrained_share15@0.85"
$PY eval_xc.py --proj-dir $P --variants $V --json results/xc_$TAG.json 2>&1 | grep -v -i warn | tee results/xc_$TAG.txt
$PY eval_dev.py --projection $P/all.npz --variants $V 2>&1 | grep -v -i warn | tee results/dev_$TAG.txt
