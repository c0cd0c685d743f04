import os
import subprocess
import sys

from helpers import REPO


def test_configure_threads_shares_cores_between_workers():
    code = ("import torch, os; from dramapic.threads import configure_threads, available_cores;"
            "n = configure_threads(workers=2); print(n, torch.get_num_threads(), os.environ['OMP_NUM_THREADS'],"
            " available_cores())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin"})
    chosen, torch_threads, omp, cores = map(int, done.stdout.split())
    assert chosen == torch_threads == omp == max(1, cores // 2)


def test_explicit_thread_count_wins():
    code = "import torch; from dramapic.threads import configure_threads; configure_threads(1); print(torch.get_num_threads())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == "1"


def test_a_worker_share_limits_the_blas_pool_already_loaded():
    # a batch worker: its parent's configure_threads() left OMP_NUM_THREADS etc. at the whole machine's count, and
    # numpy's BLAS pool was sized from them before the worker's configure_threads(share) ran; it kept every core
    code = ("import numpy, threadpoolctl; from dramapic.threads import configure_threads; configure_threads(1);"
            "import os; print(max(p['num_threads'] for p in threadpoolctl.threadpool_info()), os.environ['OMP_NUM_THREADS'])")
    env = {**os.environ, **{name: "2" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert done.stdout.split() == ["1", "1"], done.stderr
