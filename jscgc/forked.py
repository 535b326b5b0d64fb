"""Independent CPU jobs spread over forked processes, each with its share of the machine's threads.

Why: on the 2-core development CPU the small networks of the ``small`` preset do not keep two threads busy
(docs/performance.md, "CPU training: before and after": a jscgc flow step takes 183 ms on one thread and
164 ms on two), so two jobs on one thread each finish sooner than the same jobs one after another on two.
Each job computes what it would compute alone; only the thread count differs, which changes float32
reductions by rounding at most.

:func:`forked_map` forks (the children share the parent's memory, e.g. an encoded latent pool, without
copying or pickling it); the results come back pickled. Where processes cannot fork (Windows), or with
one worker, the jobs run in this process in order.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from typing import Callable, Sequence, TypeVar

import torch

__all__ = ["forked_map", "threads_per_worker"]

T = TypeVar("T")
R = TypeVar("R")

_TASK: tuple | None = None     # (fn, items, threads), set just before the pool forks; read by the children


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes sharing ``threads`` (default: this process's), at least 1."""
    if workers < 1:
        raise ValueError(f"workers {workers}: expected an integer >= 1")
    return max(1, (threads or torch.get_num_threads()) // workers)


def _run(k: int):
    fn, items, threads = _TASK
    torch.set_num_threads(threads)
    return fn(items[k])


def forked_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]``, run by ``min(workers, len(items))`` forked processes with
    :func:`threads_per_worker` torch threads each; the results in the order of ``items``. Items are handed
    out in that order as workers come free, so put the longest first. ``fn`` may be a closure (it is not
    pickled); its results must pickle. An exception in a job is raised here once the running jobs end."""
    global _TASK
    threads = threads_per_worker(workers)
    items = list(items)
    if workers == 1 or len(items) <= 1 or "fork" not in mp.get_all_start_methods():
        return [fn(x) for x in items]
    _TASK = (fn, items, threads)
    try:
        with cf.ProcessPoolExecutor(min(workers, len(items)), mp_context=mp.get_context("fork")) as pool:
            return list(pool.map(_run, range(len(items))))
    finally:
        _TASK = None
