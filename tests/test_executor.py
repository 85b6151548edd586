"""executor=: shuffle_null's replicate chunks, lesion_importance's sub-modules and reproduce's networks as
tasks on a concurrent.futures executor or a Dask cluster.

The oracle is the local run: replicate i is a pure function of (seed, i), a sub-module's lesions of (seed,
layer, cluster), a network's training and analysis of its seed, so the results must be bit-identical for any
executor, worker count and chunk size.
"""

import concurrent.futures as cf
import functools
import multiprocessing as mp
import threading

import numpy as np
import pytest

import netmod
from netmod.synthetic import glorot_weights


def block_graph():
    rng = np.random.default_rng(3)
    sizes, pairs = [12, 10, 10, 8], [(0, 1), (1, 2), (0, 2), (2, 3), (1, 3)]
    blocks = [rng.normal(size=(sizes[s], sizes[d])) for s, d in pairs]
    return netmod.from_blocks(blocks, sizes=sizes, pairs=pairs)


GRAPHS = {"chain": lambda: glorot_weights([40, 30, 30, 10], seed=0), "blocks": block_graph}
KW = {"n_shuffles": 17, "n_clusters": 4, "seed": 5, "progress": False}


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("chunk", [1, 3, 17, None])
def test_thread_pool_samples_equal_the_local_run(name, chunk):
    g = GRAPHS[name]()
    local = netmod.shuffle_null(g, **KW)
    with cf.ThreadPoolExecutor(3) as ex:
        got = netmod.shuffle_null(g, executor=ex, chunk_size=chunk, **KW)
    np.testing.assert_array_equal(got.samples, local.samples)
    assert got.observed == local.observed and got.n_shuffles == 17


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_process_pool_samples_equal_the_local_run(name):
    g = GRAPHS[name]()
    local = netmod.shuffle_null(g, **KW)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        got = netmod.shuffle_null(g, executor=ex, chunk_size=4, **KW)
    np.testing.assert_array_equal(got.samples, local.samples)
    assert got.observed == local.observed


class CountingExecutor(cf.ThreadPoolExecutor):
    """One worker; counts the tasks that ran and makes task `fail_at` raise."""

    def __init__(self, fail_at=None):
        super().__init__(1)
        self.ran, self.fail_at, self.lock = 0, fail_at, threading.Lock()

    def submit(self, fn, *args, **kwargs):
        def task():
            with self.lock:
                self.ran += 1
                index = self.ran
            if index == self.fail_at:
                raise RuntimeError(f"task {index} failed")
            return fn(*args, **kwargs)
        return super().submit(task)


def test_a_task_that_raises_stops_the_run_and_cancels_the_rest():
    g = GRAPHS["chain"]()
    with CountingExecutor(fail_at=2) as ex:
        with pytest.raises(RuntimeError, match="task 2 failed"):
            netmod.shuffle_null(g, executor=ex, chunk_size=1, **{**KW, "n_shuffles": 40})
    assert ex.ran < 41  # the observed task and 40 chunks of one: most never ran


@pytest.fixture
def ctrl_c_on_second_wait(monkeypatch):
    """Ctrl-C while shuffle_null waits for its tasks the second time; yields a function undoing it."""
    real_wait = cf.wait
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(cf, "wait", interrupted)
    yield lambda: monkeypatch.setattr(cf, "wait", real_wait)


def test_ctrl_c_cancels_the_pending_tasks(ctrl_c_on_second_wait):
    g = GRAPHS["chain"]()
    with CountingExecutor() as ex:
        with pytest.raises(KeyboardInterrupt):
            netmod.shuffle_null(g, executor=ex, chunk_size=1, **{**KW, "n_shuffles": 40})
    assert ex.ran < 41


def test_executor_settings_are_checked():
    g = GRAPHS["chain"]()
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor"):
        netmod.shuffle_null(g, executor=object(), **KW)
    with cf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(ValueError, match="spectral n-cut nulls"):
            netmod.shuffle_null(g, executor=ex, method="leiden", **KW)
        with pytest.raises(ValueError, match="chunk_size must be >= 1"):
            netmod.shuffle_null(g, executor=ex, chunk_size=0, **KW)
    with pytest.raises(ValueError, match="chunk_size applies to executor= runs only"):
        netmod.shuffle_null(g, chunk_size=3, **KW)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason="the [dask] extra (distributed) is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_dask_local_cluster_samples_equal_the_local_run(dask_client, name):
    g = GRAPHS[name]()
    local = netmod.shuffle_null(g, **{**KW, "n_shuffles": 30})
    got = netmod.shuffle_null(g, executor=dask_client.get_executor(), **{**KW, "n_shuffles": 30})
    np.testing.assert_array_equal(got.samples, local.samples)
    assert got.observed == local.observed
    got = netmod.shuffle_null(g, executor=dask_client.get_executor(), chunk_size=7, **{**KW, "n_shuffles": 30})
    np.testing.assert_array_equal(got.samples, local.samples)


def test_dask_worker_error_reaches_the_caller(dask_client):
    g = glorot_weights([6, 4], seed=0)  # 10 units: 50 clusters cannot be made, in the workers either
    with pytest.raises(ValueError, match="n_clusters must be <= the number of non-isolated nodes"):
        netmod.shuffle_null(g, n_clusters=50, progress=False)
    with pytest.raises(ValueError, match="n_clusters must be <= the number of non-isolated nodes"):
        netmod.shuffle_null(g, n_clusters=50, progress=False, executor=dask_client.get_executor())


def test_dask_ctrl_c_cancels_the_pending_tasks(dask_client, ctrl_c_on_second_wait):
    g = GRAPHS["chain"]()
    with pytest.raises(KeyboardInterrupt):
        netmod.shuffle_null(g, executor=dask_client.get_executor(), chunk_size=1, **{**KW, "n_shuffles": 200})
    ctrl_c_on_second_wait()
    # Nothing is left running on the cluster: every pending task was cancelled.
    import time

    for _ in range(50):
        if not any(dask_client.processing().values()):
            break
        time.sleep(0.1)
    assert not any(dask_client.processing().values())


def _mlp_file(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    path = tmp_path / "mlp.pt"
    torch.save(model.state_dict(), path)
    return path


def _cli_null(path, capsys, *extra):
    import json

    from netmod.cli import main

    assert main(["null", str(path), "--shuffles", "9", "--n-clusters", "3", "--seed", "2", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_null_on_local_workers_gives_the_same_samples(tmp_path, capsys):
    path = _mlp_file(tmp_path)
    local = _cli_null(path, capsys)
    workers = _cli_null(path, capsys, "--workers", "2")
    assert workers["nulls"]["layer"]["samples"] == local["nulls"]["layer"]["samples"]
    assert workers["observed"] == local["observed"]


def test_cli_null_on_a_dask_scheduler_gives_the_same_samples(dask_client, tmp_path, capsys):
    path = _mlp_file(tmp_path)
    local = _cli_null(path, capsys)
    remote = _cli_null(path, capsys, "--scheduler", dask_client.scheduler.address)
    assert remote["nulls"]["layer"]["samples"] == local["nulls"]["layer"]["samples"]


def test_cli_executor_options_are_checked(tmp_path, capsys):
    from netmod.cli import main

    path = _mlp_file(tmp_path)
    assert main(["null", str(path), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["null", str(path), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


# ---- lesion_importance(executor=) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lesion_case():
    """A briefly trained MLP pruned with live torch pruning hooks (they must pickle), its partition, data."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils import prune

    from netmod.torch_models import keras_like_mlp

    data = netmod.datasets.load_embedded("test")
    images, labels = data.images[:600], data.labels[:600]
    model = keras_like_mlp((784, 32, 24, 10), seed=1)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            prune.l1_unstructured(m, "weight", amount=0.6)
    partition = netmod.spectral_clustering(netmod.from_torch(model), n_clusters=4, seed=0)
    return model.eval(), partition, (images, labels)


def _same_importance(a, b):
    np.testing.assert_equal(a.table, b.table)  # nan z of constant nulls compares equal here
    np.testing.assert_array_equal(a.null_drops, b.null_drops)
    assert (a.base_accuracy, a.seed, a.n_draws) == (b.base_accuracy, b.seed, b.n_draws)


@pytest.mark.parametrize("chunk", [1, 3, None])
def test_lesions_on_a_thread_pool_equal_the_local_run(lesion_case, chunk):
    model, partition, data = lesion_case
    local = netmod.lesion_importance(model, partition, data, n_draws=15, seed=4, progress=False)
    with cf.ThreadPoolExecutor(3) as ex:
        got = netmod.lesion_importance(model, partition, data, n_draws=15, seed=4, progress=False, executor=ex,
                                       chunk_size=chunk)
    assert len(local.table) >= 4
    _same_importance(got, local)


def test_lesions_on_a_process_pool_equal_the_local_run(lesion_case):
    model, partition, data = lesion_case
    local = netmod.lesion_importance(model, partition, data, n_draws=15, seed=4, progress=False)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        got = netmod.lesion_importance(model, partition, data, n_draws=15, seed=4, progress=False, executor=ex)
    _same_importance(got, local)


def test_lesions_on_a_dask_cluster_equal_the_local_run(dask_client, lesion_case):
    model, partition, data = lesion_case
    local = netmod.lesion_importance(model, partition, data, n_draws=15, seed=4, progress=False)
    got = netmod.lesion_importance(model, partition, data, n_draws=15, seed=4, progress=False,
                                   executor=dask_client.get_executor(), chunk_size=2)
    _same_importance(got, local)


def test_lesion_task_errors_and_settings(lesion_case):
    model, partition, data = lesion_case
    with CountingExecutor(fail_at=1) as ex:
        with pytest.raises(RuntimeError, match="task 1 failed"):
            netmod.lesion_importance(model, partition, data, n_draws=5, progress=False, executor=ex, chunk_size=1)
    assert ex.ran < len(netmod.lesion_importance(model, partition, data, n_draws=5, progress=False).table)
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor"):
        netmod.lesion_importance(model, partition, data, n_draws=5, progress=False, executor="dask")
    with pytest.raises(ValueError, match="chunk_size applies to executor= runs only"):
        netmod.lesion_importance(model, partition, data, n_draws=5, progress=False, chunk_size=2)
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(ValueError, match="chunk_size must be >= 1"):
        netmod.lesion_importance(model, partition, data, n_draws=5, progress=False, executor=ex, chunk_size=0)


# ---- reproduce(executor=) and netmod reproduce --workers / --scheduler -----------------------------------

# One torch thread: with more, MKL's GEMMs are not reproducible from process to process in the last bits
# (about 1 run in 6 at 2 threads here; MKL_CBWR=AUTO,STRICT removes it), whatever runs the tasks.
REPRO = {"dataset": "embedded", "sizes": (784, 20, 20, 10), "epochs": 1, "prune_epochs": 1, "networks": 3,
         "n_clusters": 4, "n_shuffles": 5, "n_threads": 1}


def _numbers(result):
    """Everything a report states except timings (train_seconds differ from run to run)."""
    rows = [{k: v for k, v in r.items() if k != "train_seconds"} for r in result.rows]
    return rows, result.summary, result.claims


@pytest.fixture(scope="module")
def local_reproduction(tmp_path_factory):
    from netmod.reproduce import ReproduceConfig, reproduce

    out = tmp_path_factory.mktemp("local")
    return out, reproduce(ReproduceConfig(**REPRO), out, progress=False, log=lambda s: None, figures=False)


def _state(path):
    import torch

    return torch.load(path, weights_only=True)


def test_reproduce_on_a_process_pool_equals_the_local_run(local_reproduction, tmp_path):
    from netmod.reproduce import ReproduceConfig, reproduce

    local_out, local = local_reproduction
    lines = []
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        got = reproduce(ReproduceConfig(**REPRO), tmp_path, progress=False, log=lines.append, executor=ex)
    np.testing.assert_equal(_numbers(got), _numbers(local))
    assert sum("trained" in line for line in lines) == 12  # logged here as each task returned
    assert got.timings["executor"] == "ProcessPoolExecutor (2 workers)"
    assert "one task per seed on ProcessPoolExecutor (2 workers)" in (tmp_path / "report.md").read_text()
    for path in sorted((local_out / "models").glob("*.pt")):  # trained in the workers, saved here, identical
        a, b = _state(path), _state(tmp_path / "models" / path.name)
        assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    assert len(got.files) > 3  # the figures come from the first seed's task


def test_reproduce_on_a_thread_pool_resumes_from_saved_networks(local_reproduction, tmp_path):
    import shutil

    from netmod.reproduce import ReproduceConfig, reproduce

    local_out, local = local_reproduction
    models = tmp_path / "models"
    shutil.copytree(local_out / "models", models)
    (models / "embedded-pruned+dropout-seed1.pt").unlink()  # as if the run had stopped before this one
    stamps = {p.name: p.stat().st_mtime_ns for p in models.glob("*.pt")}
    lines = []
    with cf.ThreadPoolExecutor(3) as ex:
        got = reproduce(ReproduceConfig(**REPRO), tmp_path, progress=False, log=lines.append, executor=ex,
                        figures=False)
    assert [line.split(":")[0].split() for line in lines if "trained" in line] == [
        ["trained", "pruned+dropout", "seed", "1"]]
    assert {p.name: p.stat().st_mtime_ns for p in models.glob("*.pt") if p.name in stamps} == stamps
    np.testing.assert_equal(_numbers(got), _numbers(local))
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(ValueError, match="other settings"):
        reproduce(ReproduceConfig(**{**REPRO, "epochs": 2}), tmp_path, progress=False, log=lambda s: None,
                  executor=ex)


def test_reproduce_task_errors_reach_the_caller(tmp_path):
    from netmod.reproduce import ReproduceConfig, reproduce

    with CountingExecutor(fail_at=1) as ex, pytest.raises(RuntimeError, match="task 1 failed"):
        reproduce(ReproduceConfig(**REPRO), tmp_path, progress=False, log=lambda s: None, executor=ex)
    assert ex.ran < 3
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor"):
        reproduce(ReproduceConfig(**REPRO), tmp_path, progress=False, log=lambda s: None, executor=4)


def _cli_reproduce(out, *extra):
    from netmod.cli import main

    args = ["reproduce", "--dataset", "embedded", "--sizes", "784,20,20,10", "--epochs", "1", "--prune-epochs", "1",
            "--networks", "3", "--n-clusters", "4", "--shuffles", "5", "--threads", "1", "--out", str(out), *extra]
    assert main(args) == 0
    import json

    data = json.loads((out / "results.json").read_text())
    rows = [{k: v for k, v in r.items() if k != "train_seconds"} for r in data["rows"]]
    return rows, data["summary"], data["claims"]


def test_cli_reproduce_on_workers_and_on_a_dask_scheduler_gives_the_same_report(dask_client, local_reproduction,
                                                                               tmp_path, capsys):
    import json

    from netmod.results import to_plain

    local_out, local = local_reproduction
    expected = json.loads(json.dumps(to_plain(_numbers(local))))
    assert list(_cli_reproduce(tmp_path / "w", "--workers", "2")) == expected
    assert list(_cli_reproduce(tmp_path / "d", "--scheduler", dask_client.scheduler.address)) == expected
    assert "one task per seed on Dask cluster tcp://" in (tmp_path / "d" / "report.md").read_text()
    capsys.readouterr()


def test_cli_lesion_on_local_workers_gives_the_same_importance(lesion_case, tmp_path, capsys):
    import json

    from netmod.cli import main
    from netmod.training import save_model

    model, _, _ = lesion_case
    path = tmp_path / "m.pt"
    save_model(model, path)
    saved = {}
    for name, extra in (("local", []), ("workers", ["--workers", "2"])):
        assert main(["lesion", str(path), "--dataset", "embedded", "--n-clusters", "4", "--draws", "8",
                     "--dependency-draws", "3", "--out", str(tmp_path / name), *extra]) == 0
        saved[name] = json.loads((tmp_path / name / "lesions.json").read_text())["importance"]
    capsys.readouterr()
    assert saved["workers"] == saved["local"] and len(saved["local"]["table"]) >= 4


def test_compare_of_many_graphs_maps_over_a_process_pool():
    """The README's recipe: executor.map(netmod.compare, graphs) (graphs and results pickle)."""
    graphs = [netmod.from_layers(glorot_weights([20, 16, 12], seed=s)) for s in range(3)]
    local = [netmod.compare(g, n_clusters=3) for g in graphs]
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        remote = list(ex.map(functools.partial(netmod.compare, n_clusters=3), graphs))
    for a, b in zip(local, remote, strict=True):
        assert [{k: v for k, v in r.items() if k != "seconds"} for r in a.rows] == \
            [{k: v for k, v in r.items() if k != "seconds"} for r in b.rows]
        assert a.pairs == b.pairs
