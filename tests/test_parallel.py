"""The native thread pool (csrc/parallel.hpp), through its private test bindings.

Checked in both builds of the kernel: idle workers block instead of spinning
(their CPU time while the pool waits between two jobs, not wall-clock speed),
every member runs every job and every task runs once on a valid worker index,
the first exception reaches the caller and stops the remaining tasks, the
pool works after one, and a pool used from inside its own job runs the inner
work in the calling thread.
"""

import math

import numpy as np
import pytest

from netmod import _native

BUILDS = _native.builds()
BUILD_IDS = [name for name, _ in BUILDS]


@pytest.fixture(params=[core for _, core in BUILDS], ids=BUILD_IDS)
def build(request):
    return request.param


@pytest.mark.parametrize("n_threads", [2, 4])
def test_idle_workers_use_no_cpu(build, n_threads):
    idle = 0.5
    used = build._pool_idle_cpu_seconds(n_threads, idle)
    if math.isnan(used):
        pytest.skip("no per-thread CPU clock on this platform")
    # A blocked worker uses next to nothing; a spinning or yielding one takes
    # whatever core share it gets (tens of percent even on a loaded machine).
    assert 0.0 <= used < 0.02 * idle * (n_threads - 1)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_run_calls_every_member_every_round(build, n_threads):
    counts = build._pool_run(n_threads, 3000)
    np.testing.assert_array_equal(counts, np.full(n_threads, 3000))


@pytest.mark.parametrize("member", [0, 1, 2])
def test_run_exception_reaches_python(build, member):
    with pytest.raises(ValueError, match=f"member {member} failed"):
        build._pool_run(3, 50, fail_member=member)


@pytest.mark.parametrize("n_threads", [1, 2, 4])
@pytest.mark.parametrize("n_tasks", [0, 1, 3, 1000])
def test_for_each_runs_every_task_once(build, n_threads, n_tasks):
    out = build._pool_for_each(n_threads, n_tasks)
    assert out["error"] is None
    worker = out["worker"]
    assert worker.shape == (n_tasks,)
    assert ((worker >= 0) & (worker < max(1, min(n_threads, n_tasks)))).all()
    assert out["after"] == n_tasks


def test_for_each_exception_skips_remaining_tasks_one_thread(build):
    out = build._pool_for_each(1, 10, fail_at=3)
    assert out["error"] == "task 3 failed"
    np.testing.assert_array_equal(out["worker"], [0, 0, 0, 0] + [-1] * 6)
    assert out["after"] == 10  # the pool still runs a full for_each afterwards


def test_for_each_exception_skips_remaining_tasks_threads(build):
    # Task 0 fails at once; the other members stop at their next task. The
    # bound leaves room for a failing member descheduled on a loaded machine.
    out = build._pool_for_each(4, 400, fail_at=0, task_seconds=0.002)
    assert out["error"] == "task 0 failed"
    assert out["worker"][0] >= 0
    assert (out["worker"] >= 0).sum() < 200
    assert out["after"] == 400


@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_nested_use_of_one_pool(build, n_threads):
    out = build._pool_for_each(n_threads, 40, nested=7)
    assert out["error"] is None
    assert (out["worker"] >= 0).all()
    np.testing.assert_array_equal(out["inner"], np.ones(40 * 7, dtype=np.int64))


def test_bad_arguments(build):
    with pytest.raises(ValueError, match="n_threads must be >= 1, got 0"):
        build._pool_run(0, 1)
    with pytest.raises(ValueError, match="idle_seconds"):
        build._pool_idle_cpu_seconds(2, -1.0)
