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
