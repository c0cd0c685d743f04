#!/bin/bash
# All projections for the cross-corpus protocol + the shipped one. Usage: bash train_all.sh DIM WEIGHTING OUTDIR
set -e
cd "$(dirname "$0")"
export PYTHONPATH=/work/base:/work/exp14d OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
DIM=${1:-100}; W=${2:-none}; OUT=${3:-proj}
mkdir -p "$OUT"
PY="nice -n 10 /work/venv/bin/python train_projection.py --dim $DIM --weighting $W"
$PY --out "$OUT/all.npz"
for s in librispeech-train-clean-100 emodb cv ravdess nemo; do $PY --without $s --out "$OUT/without_$s.npz"; done
# the mixed timelines: without every source of their cast
$PY --without librispeech-train-clean-100 --without ravdess --out "$OUT/without_librispeech-train-clean-100+ravdess.npz"
$PY --without cv --without emodb --out "$OUT/without_cv+emodb.npz"
$PY --without librispeech-train-clean-100 --without nemo --without ravdess --out "$OUT/without_librispeech-train-clean-100+nemo+ravdess.npz"
$PY --without cv --without emodb --without nemo --without ravdess --out "$OUT/without_cv+emodb+nemo+ravdess.npz"
