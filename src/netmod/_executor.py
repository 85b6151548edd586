"""Running netmod's long calls as tasks on a ``concurrent.futures`` executor.

Every call that takes ``executor=`` (:func:`netmod.shuffle_null`,
:func:`netmod.lesion_importance`, :func:`netmod.reproduce.reproduce`) cuts its
work into tasks whose results are pure functions of their arguments, submits
them all, and assembles the results by task, so the answer does not depend on
the executor, the number of workers or the order in which tasks finish.

A Dask executor (``distributed.Client(address).get_executor()``) is
recognised by its client: large inputs are then scattered to the workers once
(:func:`share`) instead of travelling with every task.

Examples
--------
>>> from concurrent.futures import ThreadPoolExecutor
>>> got = {}
>>> with ThreadPoolExecutor(2) as ex:
...     run_tasks(ex, [(i, pow, (i, 2)) for i in range(4)], got.__setitem__)
...     print(describe(ex), share(ex, "data"))
ThreadPoolExecutor (2 workers) data
>>> sorted(got.items())
[(0, 0), (1, 1), (2, 4), (3, 9)]
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["check_executor", "describe", "run_tasks", "share", "worker_count"]


def check_executor(executor: Any) -> Any:
    """``executor`` if it can take tasks (has ``submit``), else a TypeError."""
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
    return executor


def _client(executor: Any) -> Any:
    client = getattr(executor, "_client", None)
    return client if client is not None and callable(getattr(client, "scatter", None)) else None


def worker_count(executor: Any) -> int:
    """Workers behind ``executor`` (the Dask cluster's, or a pool's ``max_workers``); 4 if unknown."""
    client = _client(executor)
    if client is not None and callable(getattr(client, "scheduler_info", None)):
        try:
            return max(1, len(client.scheduler_info().get("workers", {})))
        except Exception:  # noqa: BLE001 - a count for chunking only
            return 4
    return max(1, int(getattr(executor, "_max_workers", 4) or 4))


def describe(executor: Any) -> str:
    """A line naming the executor: its class (or Dask scheduler address) and worker count."""
    client = _client(executor)
    if client is not None:
        address = getattr(getattr(client, "scheduler", None), "address", None) or "?"
        return f"Dask cluster {address} ({worker_count(executor)} workers)"
    return f"{type(executor).__name__} ({worker_count(executor)} workers)"


def share(executor: Any, value: Any) -> Any:
    """``value`` as a task argument: on a Dask cluster, a future of it held by every worker
    (sent once, not per task); otherwise ``value`` itself."""
    client = _client(executor)
    if client is None:
        return value
    return client.scatter([value], broadcast=True, hash=False)[0]


def run_tasks(executor: Any, tasks: Iterable[tuple], on_result: Callable[[Any, Any], None]) -> None:
    """Submit ``(key, fn, args)`` tasks, then call ``on_result(key, result)`` as each finishes.

    The first task that raises (or Ctrl-C while waiting) cancels the tasks
    not yet started and the exception reaches the caller.
    """
    pending = {}
    try:
        for key, fn, args in tasks:
            pending[executor.submit(fn, *args)] = key
        while pending:
            done, _ = cf.wait(list(pending), timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in done:
                key = pending.pop(future)
                on_result(key, future.result())
    except BaseException:
        for future in pending:  # a task that raised, or Ctrl-C: nothing more runs
            future.cancel()
        raise
