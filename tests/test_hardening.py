"""Hardening: worker-thread errors, concurrent callers, Ctrl-C, hostile model files.

The scripts that could take the interpreter down with them (std::terminate,
a signal) run in a subprocess, so a failure shows as a failed test rather
than a dead test run.
"""

import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import netmod
from netmod import _core
from netmod.synthetic import glorot_weights


def _run_python(code, timeout=120):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


# A 3x3 layer with one weight per row and column: every unit has an edge, so
# clustering all 6 units into 6 clusters is valid; almost every "layer"
# shuffle isolates a unit, and the replicate's clustering then fails inside a
# worker thread (n_clusters > non-isolated units).
_MATCHING = [np.eye(3)]


def test_worker_exception_reaches_python_in_process():
    with pytest.raises(ValueError, match="n_clusters must be <= the number of non-isolated nodes"):
        _core.null_samples(_MATCHING, method="layer", seed=0, start=0, count=16, n_clusters=6, n_threads=4)
    # The pool is usable afterwards, and the same call on valid input works.
    out = _core.null_samples(_MATCHING, method="nonzero", seed=0, start=0, count=16, n_clusters=6, n_threads=4)
    assert out.shape == (16,) and np.isfinite(out).all()


def test_worker_exception_is_not_terminate():
    r = _run_python(
        """
        import numpy as np, netmod
        try:
            netmod.shuffle_null([np.eye(3)], n_shuffles=32, shuffle="layer", n_clusters=6,
                                n_threads=4, progress=False)
        except ValueError as exc:
            print("ValueError:", exc)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "ValueError: n_clusters must be <=" in r.stdout
    assert "terminate" not in r.stderr


def _work(case):
    kind, seed = case
    if kind == "spectral":
        w = glorot_weights([40, 30, 30, 10], seed=seed)
        p = netmod.spectral_clustering(netmod.from_layers(w), n_clusters=4, seed=seed, n_threads=2)
        return p.labels.tobytes(), p.ncut
    if kind == "null":
        w = glorot_weights([30, 20, 20, 8], seed=seed)
        n = netmod.shuffle_null(w, n_shuffles=6, n_clusters=3, seed=seed, n_threads=2, progress=False)
        return n.samples.tobytes(), n.observed
    rng = np.random.default_rng(seed)
    a = rng.random((60, 60)) * (rng.random((60, 60)) < 0.2)
    a = np.triu(a, 1) + np.triu(a, 1).T
    return netmod.ncut(a, rng.integers(0, 5, 60))


def test_concurrent_calls_match_serial():
    cases = [(kind, seed) for seed in range(3) for kind in ("spectral", "null", "ncut")] * 2
    serial = [_work(c) for c in cases]
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(_work, cases))
    assert concurrent == serial


def test_concurrent_errors_do_not_leak_between_threads():
    def bad(i):
        try:
            netmod.spectral_clustering(np.array([[0.0, 1.0], [1.0, 0.0]]), n_clusters=3 + i)
        except ValueError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        msgs = list(pool.map(bad, range(8)))
    assert msgs == [f"n_clusters must be <= the number of non-isolated nodes (2), got {3 + i}" for i in range(8)]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX-only")
def test_ctrl_c_stops_a_long_null_run():
    code = """
        import signal, sys, time
        # SIG_IGN is inherited when the suite runs in the background; a user's
        # interpreter has Python's own handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import numpy as np, netmod
        from netmod.synthetic import glorot_weights
        w = glorot_weights([200, 100, 100, 10], seed=0)
        print("start", flush=True)
        t0 = time.monotonic()
        try:
            netmod.shuffle_null(w, n_shuffles=100000, n_clusters=12, n_threads=2, progress=False)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        print("finished", time.monotonic() - t0, flush=True)
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "start"
        time.sleep(3.0)  # well into the replicates
        assert p.poll() is None
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        stopped = time.monotonic() - sent
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 3, (out, err)
    assert "interrupted" in out
    # The run would take many minutes; it must stop within a couple of chunks
    # (about a second on an idle machine; generous for a loaded CI runner).
    assert stopped < 10.0, stopped


class _RunsCode:
    """Unpickling this writes a marker file: proof that code from a file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _hostile_files(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "PWNED"
    payload = {"0.weight": _RunsCode(marker), "0.bias": torch.zeros(3)}
    files = {}
    # A bare pickle (torch's legacy, non-zip format).
    files["raw"] = tmp_path / "raw.pt"
    with open(files["raw"], "wb") as fh:
        pickle.dump(payload, fh, protocol=2)
    # torch.save's own zip layout with the payload as its data.pkl.
    good = tmp_path / "good.pt"
    torch.save({"0.weight": torch.ones(3, 4)}, good)
    files["zip"] = tmp_path / "zip.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(files["zip"], "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps(payload, protocol=2)
            dst.writestr(item, data)
    # A real TorchScript archive with the payload as its data.pkl.
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3))), scripted)
    files["script"] = tmp_path / "script.pt"
    with zipfile.ZipFile(scripted) as src, zipfile.ZipFile(files["script"], "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps(payload, protocol=2)
            dst.writestr(item, data)
    # A zip posing as a TorchScript archive (it has a code/ entry).
    files["fake_script"] = tmp_path / "fake_script.pt"
    with zipfile.ZipFile(files["fake_script"], "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        z.writestr("archive/code/__torch__.py", "import os\nos.system('touch PWNED')\n")
        z.writestr("archive/version", "3\n")
    return files, marker


@pytest.mark.parametrize("kind", ["raw", "zip", "script", "fake_script"])
def test_load_weights_refuses_a_crafted_pickle(tmp_path, monkeypatch, kind):
    from netmod.torch_models import load_weights

    monkeypatch.chdir(tmp_path)
    files, marker = _hostile_files(tmp_path)
    with pytest.raises(ValueError, match="path .* is not a loadable .*(weights_only|never run)"):
        load_weights(files[kind])
    assert not marker.exists()
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("kind", ["raw", "zip"])
def test_load_model_refuses_a_crafted_pickle(tmp_path, monkeypatch, kind):
    from netmod.training import load_model

    monkeypatch.chdir(tmp_path)
    files, marker = _hostile_files(tmp_path)
    files[kind].with_suffix(".json").write_text('{"sizes": [4, 3], "dropout": 0.0}')
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_model(files[kind])
    assert not marker.exists()


def test_safe_loading_still_reads_real_files(tmp_path):
    torch = pytest.importorskip("torch")
    from netmod.torch_models import keras_like_mlp, load_weights
    from netmod.training import load_model, save_model

    model = keras_like_mlp([6, 4, 3], seed=1)
    save_model(model, tmp_path / "m.pt", note="x")
    loaded, meta = load_model(tmp_path / "m.pt")
    assert meta["sizes"] == [6, 4, 3] and meta["note"] == "x"
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    got = load_weights(tmp_path / "m.pt", sizes=[6, 4, 3])
    np.testing.assert_array_equal(got[0], model[0].weight.detach().double().numpy().T)


def test_torchscript_weights_are_read_without_running_torchscript(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from netmod.torch_models import keras_like_mlp, load_weights

    model = keras_like_mlp([7, 5, 3], seed=2)
    torch.jit.save(torch.jit.script(model), tmp_path / "s.pt")

    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load runs the archive's code")

    monkeypatch.setattr(torch.jit, "load", refuse)
    got = load_weights(tmp_path / "s.pt", sizes=[7, 5, 3])
    expected = [m.weight.detach().double().numpy().T for m in model if isinstance(m, torch.nn.Linear)]
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def _rewrite_zip(src, dst, replace):
    """A copy of the zip ``src`` with the entries for which ``replace(name, data)`` returns bytes replaced."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for item in a.infolist():
            data = a.read(item.filename)
            new = replace(item.filename, data)
            b.writestr(item, data if new is None else new)
    return dst


def _hostile_pt2(tmp_path):
    """Real torch.export archives with a pickle that runs code where torch.export.load would unpickle it."""
    import json

    torch = pytest.importorskip("torch")
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_RunsCode(marker), protocol=2)
    good = tmp_path / "good.pt2"
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 1)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 2, 5, 5),)), good)
    files = {}
    # The sample inputs: torch.export.load tries weights_only=True, then falls back to weights_only=False.
    files["sample_inputs"] = _rewrite_zip(good, tmp_path / "sample.pt2",
                                          lambda n, d: payload if n.endswith("data/sample_inputs/model.pt") else None)

    # A weight marked use_pickle: torch.export.load unpickles it with weights_only=False.
    def pickled_weight(name, data):
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            config["config"]["0.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        return payload if name.endswith("data/weights/weight_0") else None

    files["weight"] = _rewrite_zip(good, tmp_path / "weight.pt2", pickled_weight)

    # A custom-object constant: torch.export.load unpickles it with torch._C._pickle_load_obj / pickle.loads.
    def pickled_constant(name, data):
        if name.endswith("model_constants_config.json"):
            return json.dumps({"config": {"obj": {"path_name": "opaque_obj_0", "is_param": False,
                                                  "use_pickle": True, "tensor_meta": None}}}).encode()
        return None

    files["constant"] = _rewrite_zip(good, tmp_path / "constant.pt2", pickled_constant)
    with zipfile.ZipFile(files["constant"], "a") as z:
        root = z.namelist()[0].split("/")[0]
        z.writestr(f"{root}/data/constants/opaque_obj_0", payload)
    # Compiled AOTInductor code, which torch.export.load loads as a library.
    files["aoti"] = _rewrite_zip(good, tmp_path / "aoti.pt2", lambda n, d: None)
    with zipfile.ZipFile(files["aoti"], "a") as z:
        root = z.namelist()[0].split("/")[0]
        z.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
    return good, files, marker


@pytest.mark.parametrize("kind,message", [
    ("sample_inputs", r"its data/sample_inputs/model.pt is not a weights-only pickle .*Unsupported global: GLOBAL "
                      r"exec"),
    ("weight", r"the weight '0.weight' is stored as a pickle .*never unpickles"),
    ("constant", r"the constant 'obj' is stored as a pickle \('opaque_obj_0'"),
    ("aoti", r"it holds AOTInductor-compiled code"),
])
def test_load_network_refuses_a_crafted_pt2(tmp_path, monkeypatch, kind, message):
    from netmod.torch_models import load_network

    monkeypatch.chdir(tmp_path)
    good, files, marker = _hostile_pt2(tmp_path)
    assert load_network(good).names == ("input", "0", "2")  # the untouched archive reads
    with pytest.raises(ValueError, match=r"is not a torch.export archive netmod can read safely: " + message):
        load_network(files[kind])
    assert not marker.exists()


def test_pt2_is_read_without_torch_export_load(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from netmod.torch_models import load_network

    good, _, _ = _hostile_pt2(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("torch.export.load unpickles parts of the archive with weights_only=False")

    monkeypatch.setattr(torch.export, "load", refuse)
    monkeypatch.setattr(torch.export.pt2_archive._package, "load_pt2", refuse)
    assert load_network(good).sizes == (2, 3, 2)


@pytest.mark.parametrize("kind", ["script", "fake_script"])
def test_load_network_refuses_a_crafted_torchscript(tmp_path, monkeypatch, kind):
    from netmod.torch_models import load_network

    monkeypatch.chdir(tmp_path)
    files, marker = _hostile_files(tmp_path)
    with pytest.raises(ValueError, match="is not a loadable TorchScript archive .*never run"):
        load_network(files[kind])
    assert not marker.exists()
    assert not (tmp_path / "PWNED").exists()


def test_torchscript_constants_are_read_as_literals_never_run(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from netmod.torch_models import load_network

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    scripted = tmp_path / "cnn.pt"
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 1))
    torch.jit.save(torch.jit.script(model), scripted)
    assert load_network(scripted, input_shape=(2, 9, 9)).sizes == (2, 3, 2)
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned')"

    def inject(name, data):
        # TorchScript names the class conv.py or conv/___torch_mangle_N.py, as other scripted Conv2d came first.
        if "/code/__torch__/torch/nn/modules/conv" in name and name.endswith(".py"):
            return data.replace(b"stride : Final[Tuple[int, int]] = (2, 2)",
                                f"stride : Final[Tuple[int, int]] = {code}".encode())
        return None

    crafted = _rewrite_zip(scripted, tmp_path / "crafted.pt", inject)
    with zipfile.ZipFile(crafted) as z:
        assert sum(b"__import__" in z.read(n) for n in z.namelist() if n.endswith(".py")) == 1
    with pytest.raises(ValueError, match=r"constant line .stride : Final\[Tuple\[int, int\]\] = __import__.* of module "
                                         r"'0' is not a literal"):
        load_network(crafted, input_shape=(2, 9, 9))
    assert not marker.exists()
