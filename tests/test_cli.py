"""The netmod command line."""

import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import netmod
from netmod.cli import main
from netmod.torch_models import keras_like_mlp


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"netmod {netmod.__version__}"


def test_demo_json_matches_library(capsys):
    assert main(["demo", "--sizes", "30,20,20,5", "--n-clusters", "3", "--seed", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["network"] for r in rows] == ["untrained", "untrained, 90% magnitude-pruned"]
    from netmod.torch_models import keras_like_mlp

    g = netmod.from_torch(keras_like_mlp([30, 20, 20, 5], seed=1))
    expected = netmod.spectral_clustering(g, n_clusters=3, seed=1)
    assert rows[0]["ncut"] == expected.ncut
    assert rows[0]["partition"]["labels"] == expected.labels.tolist()
    assert rows[1]["n_edges"] < rows[0]["n_edges"]
    assert sum(rows[0]["cluster_sizes"]) == 75


def test_keras_like_init_is_glorot_uniform_with_zero_bias():
    from netmod.torch_models import keras_like_mlp

    m = keras_like_mlp([200, 100, 10], seed=3)
    w = m[0].weight.detach().numpy()
    bound = np.sqrt(6.0 / 300)
    assert np.abs(w).max() <= bound
    # Uniform on [-b, b] has variance b^2 / 3.
    assert abs(w.var() - bound**2 / 3) < 0.05 * bound**2 / 3
    assert float(m[0].bias.detach().abs().sum()) == 0.0
    same = keras_like_mlp([200, 100, 10], seed=3)
    assert np.array_equal(w, same[0].weight.detach().numpy())


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "netmod", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("netmod ")


@pytest.mark.parametrize("sizes,k,published", [("784,256,256,256,256,10", "12", True), ("30,20,20,5", "3", False),
                                               ("784,256,256,256,256,10", "4", False)])
def test_demo_prints_the_published_number_only_for_its_settings(capsys, sizes, k, published):
    assert main(["demo", "--sizes", sizes, "--n-clusters", k]) == 0
    out = capsys.readouterr().out
    assert ("10.30 +- 0.03" in out) is published
    assert ("No published n-cut" in out) is not published


class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


@pytest.fixture()
def saved(tmp_path):
    model = keras_like_mlp([20, 12, 12, 5], seed=0)
    state = tmp_path / "mlp.pt"
    torch.save(model.state_dict(), state)
    script = tmp_path / "mlp-script.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(script))
    return model, state, script


@pytest.mark.parametrize("kind", ["state_dict", "torchscript"])
def test_null_json_matches_shuffle_null(saved, kind, capsys):
    model, state, script = saved
    path = state if kind == "state_dict" else script
    argv = ["null", str(path), "--shuffle", "layer,nonzero", "--shuffles", "12", "--n-clusters", "3", "--seed", "4",
            "--threads", "1", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["layer_sizes"] == [20, 12, 12, 5] and record["n_shuffles"] == 12 and record["seed"] == 4
    for shuffle in ("layer", "nonzero"):
        ref = netmod.shuffle_null(model, n_shuffles=12, shuffle=shuffle, n_clusters=3, seed=4, progress=False)
        got = record["nulls"][shuffle]
        assert got["samples"] == ref.samples.tolist()
        assert got["shuffle"] == shuffle and got["method"] == "spectral" and got["n_clusters"] == 3
        for key in ("observed", "mean", "std", "zscore", "percentile", "significant"):
            assert got[key] == getattr(ref, key), key
        assert record["observed"] == ref.observed


def test_null_table_and_figure(saved, tmp_path, capsys):
    _, state, _ = saved
    out = tmp_path / "report"
    assert main(["null", str(state), "--shuffles", "6", "--n-clusters", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "observed n-cut" in text and "\nlayer " in text and "nonzero" not in text.split("percentile =")[0]
    assert (out / "null.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "null.json").read_text())["nulls"]["layer"]["n_shuffles"] == 6


@pytest.mark.parametrize("args,message", [
    (["--shuffle", "bogus"], "shuffle must be one of 'layer', 'nonzero'"),
    (["--shuffle", "layer,layer"], "--shuffle must list"),
    (["--shuffles", "0"], "n_shuffles must be >= 1, got 0"),
    (["--n-clusters", "1"], "n_clusters must be >= 2, got 1"),
    (["--n-clusters", "100"], "n_clusters must be <="),
    (["--shuffles", "many"], "argument --shuffles: invalid int value"),
    (["--sizes", "20,12,5"], "do not match the saved layers"),
])
def test_null_bad_settings_exit_2_with_one_line(saved, capsys, args, message):
    _, state, _ = saved
    if "invalid int" in message:  # argparse's own errors exit through SystemExit
        with pytest.raises(SystemExit) as info:
            main(["null", str(state), *args])
        assert info.value.code == 2
    else:
        assert main(["null", str(state), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_null_bad_files_exit_2_and_run_no_code(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"0.weight": _RunsCode()}, fh)
    (tmp_path / "text.pt").write_text("not a model")
    for path, message in ((tmp_path / "evil.pt", "weights_only"), (tmp_path / "text.pt", "not a loadable"),
                          (tmp_path / "missing.pt", "no such file")):
        assert main(["null", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("netmod null: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "PWNED").exists()


def test_null_command_runs_as_a_program(saved):
    _, state, _ = saved
    out = subprocess.run([sys.executable, "-m", "netmod", "null", str(state), "--shuffles", "4", "--n-clusters", "3"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "observed n-cut" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "netmod", "null", str(state) + ".missing"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


# --- networks: .pt2 (torch.export) and TorchScript CNNs, --include / --kernel-norm ---------------------


def reference_graph(model, x, include, kernel_norm):
    """The graph the CLI should build, from the live model's trace: a chain of blocks into from_layers."""
    from netmod.tracing import trace_network

    t = trace_network(model, example_input=x, include=include, kernel_norm=kernel_norm)
    assert t.pairs == tuple((i, i + 1) for i in range(len(t.sizes) - 1))
    return netmod.from_layers(list(t.blocks), names=list(t.names)), t


def save_pt2(model, x, path):
    torch.export.save(torch.export.export(model.eval(), (x,)), path)
    return path


@pytest.fixture()
def small_cnn(cnn_models):
    torch.manual_seed(0)
    return cnn_models.small_cnn(width=0.25).eval(), torch.zeros(1, 1, 28, 28)


def test_compare_pt2_conv_graph_matches_library(small_cnn, tmp_path, capsys):
    model, x = small_cnn
    path = save_pt2(model, x, tmp_path / "cnn.pt2")
    argv = ["compare", str(path), "--include", "conv", "--kernel-norm", "l2", "--n-clusters", "3", "--seed", "2"]
    assert main([*argv, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    graph, _ = reference_graph(model, x, "conv", "l2")
    want = netmod.compare(graph, n_clusters=3, seed=2).to_dict()
    def timeless(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert timeless(got["rows"]) == timeless(json.loads(json.dumps(want["rows"]))) and len(got["rows"]) == 4
    assert got["partitions"]["spectral"]["labels"] == want["partitions"]["spectral"]["labels"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{path}: layers 0 (16), 2 (16), 5 (16); 48 units, 512 non-zero edges; kernel norm l2, "
                           f"include conv\n")


@pytest.mark.parametrize("kind", ["pt2", "torchscript"])
def test_null_vgg_conv_graph_matches_shuffle_null(cnn_models, tmp_path, capsys, kind):
    torch.manual_seed(1)
    model, x = cnn_models.vgg16_cifar(width=0.125).eval(), torch.zeros(1, 3, 32, 32)
    if kind == "pt2":
        path = save_pt2(model, x, tmp_path / "vgg.pt2")
    else:
        path = tmp_path / "vgg.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(model), str(path))
    argv = ["null", str(path), "--include", "conv", "--kernel-norm", "induced-l1", "--shuffles", "6",
            "--n-clusters", "4", "--seed", "3", "--threads", "1", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    graph, trace = reference_graph(model, x, "conv", "induced-l1")
    ref = netmod.shuffle_null(graph, n_shuffles=6, shuffle="layer", n_clusters=4, seed=3, progress=False)
    assert record["layer_names"] == list(trace.names) and len(trace.names) == 13
    assert record["layer_sizes"] == list(trace.sizes) and record["kernel_norm"] == "induced-l1"
    assert record["include"] == "conv" and record["layer_kinds"] == ["conv2d"] * 13
    assert record["observed"] == ref.observed and record["nulls"]["layer"]["samples"] == ref.samples.tolist()


def test_null_torchscript_cnn_table_names_layers_units_and_norm(small_cnn, tmp_path, capsys):
    model, _ = small_cnn
    path = tmp_path / "cnn.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(path))
    assert main(["null", str(path), "--shuffles", "3", "--n-clusters", "3", "--input-shape", "1,28,28"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head == (f"{path}: layers input (1), 0 (16), 2 (16), 5 (16), 9 (128), 11 (10); 187 units, 3856 non-zero "
                    "edges; kernel norm l1, include all; spectral clustering k=3, seed 0")
    assert "MLP" not in head


@pytest.mark.parametrize("args,message", [
    (["--include", "conv"], "--include apply to networks saved as .pt2 (torch.export) or TorchScript CNNs; "),
    (["--kernel-norm", "l2", "--input-shape", "1,2"], "--kernel-norm and --input-shape apply to networks"),
])
def test_network_options_are_refused_for_mlp_files(saved, capsys, args, message):
    _, state, script = saved
    for path in (state, script):
        assert main(["null", str(path), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and f"{path} is an MLP file" in err and err.count("\n") == 1, err


def test_network_files_bad_settings_exit_2(small_cnn, tmp_path, capsys):
    model, x = small_cnn
    path = save_pt2(model, x, tmp_path / "cnn.pt2")
    torch.save(model.state_dict(), tmp_path / "state.pt")
    for argv, message in (
        (["compare", str(path), "--include", "filters"], "argument --include: invalid choice: 'filters'"),
        (["compare", str(path), "--sizes", "1,16"],
         "sizes [1, 16] do not match the saved layers [1, 16, 16, 16, 128, 10]"),
        (["compare", str(path), "--input-shape", "1,28,28"], "input_shape is for TorchScript archives"),
        (["null", str(tmp_path / "state.pt")], "is a state_dict of a convolutional network (conv kernels 0.weight "),
    ):
        if "invalid choice" in message:
            with pytest.raises(SystemExit) as info:
                main(argv)
            assert info.value.code == 2
        else:
            assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_null_refuses_a_crafted_pt2_and_runs_no_code(small_cnn, tmp_path, capsys, monkeypatch):
    import zipfile

    monkeypatch.chdir(tmp_path)
    model, x = small_cnn
    good = save_pt2(model, x, tmp_path / "good.pt2")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "evil.pt2", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, pickle.dumps(_RunsCode()) if item.filename.endswith("sample_inputs/model.pt") else data)
    assert main(["null", str(tmp_path / "evil.pt2"), "--include", "conv"]) == 2
    err = capsys.readouterr().err
    assert "not a weights-only pickle" in err and err.count("\n") == 1, err
    assert not (tmp_path / "PWNED").exists()


def test_null_resnet18_pt2(cnn_models, tmp_path, capsys):
    torch.manual_seed(2)
    model, x = cnn_models.resnet18(n_classes=10, width=0.125).eval(), torch.zeros(1, 3, 32, 32)
    path = save_pt2(model, x, tmp_path / "r18.pt2")
    assert main(["null", str(path), "--include", "conv", "--shuffles", "4", "--n-clusters", "4", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["layer_names"]) == 20 and record["n_units"] == sum(record["layer_sizes"])
    # The same numbers as the library on the live model (a residual net: the block kernel, not a chain).
    graph = netmod.from_torch(model, example_input=x, include="conv")
    assert any(d - s > 1 for s, d in graph["layer_pairs"])
    null = netmod.shuffle_null(graph, n_shuffles=4, n_clusters=4, seed=0, progress=False)
    assert record["observed"] == null.observed
    assert record["nulls"]["layer"]["samples"] == null.samples.tolist()
