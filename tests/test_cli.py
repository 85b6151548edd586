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
