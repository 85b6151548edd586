"""compare(): table, pairwise scores, JSON, CLI, and model loading."""

import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import netmod
from netmod.cli import main
from netmod.synthetic import clusterable_weights, prune_by_magnitude
from netmod.torch_models import keras_like_mlp, load_weights


@pytest.fixture(scope="module")
def planted_graph():
    return netmod.from_layers(prune_by_magnitude(clusterable_weights([60, 40, 40, 40, 10], n_modules=4, seed=2), 0.8))


def test_compare_rows_pairs_and_equal_k(planted_graph):
    cmp = netmod.compare(planted_graph, n_clusters=6, seed=0)
    names = [r["method"] for r in cmp.rows]
    k_leiden = cmp.partitions["leiden"].n_clusters
    assert names[:3] == ["spectral", "leiden", "louvain"]
    if k_leiden != 6:
        assert f"spectral@k={k_leiden}" in names
        assert cmp.partitions[f"spectral@k={k_leiden}"].n_clusters == k_leiden
    for r in cmp.rows:
        p = cmp.partitions[r["method"]]
        assert r["ncut"] == pytest.approx(netmod.ncut(planted_graph, p.labels), rel=1e-12)
        assert r["modularity"] == pytest.approx(netmod.modularity(planted_graph, p.labels), abs=1e-12)
        assert r["sizes"] == sorted(r["sizes"], reverse=True) and sum(r["sizes"]) == (p.labels >= 0).sum()
        comp = np.asarray(r["layer_composition"])
        np.testing.assert_allclose(comp.sum(axis=1), 1.0)
    assert len(cmp.pairs) == len(cmp.rows) * (len(cmp.rows) - 1) // 2
    for pair in cmp.pairs:
        a, b = cmp.partitions[pair["a"]].labels, cmp.partitions[pair["b"]].labels
        kept = (a >= 0) & (b >= 0)
        assert pair["ari"] == pytest.approx(adjusted_rand_score(a[kept], b[kept]), abs=1e-10)
        assert pair["nmi"] == pytest.approx(normalized_mutual_info_score(a[kept], b[kept]), abs=1e-10)
        assert pair["vi"] >= 0


def test_compare_round_trips_json_and_prints(planted_graph):
    cmp = netmod.compare(planted_graph, n_clusters=4, seed=1)
    data = json.loads(json.dumps(cmp.to_dict()))
    assert [r["method"] for r in data["rows"]] == [r["method"] for r in cmp.rows]
    assert data["partitions"]["leiden"]["labels"] == cmp.partitions["leiden"].labels.tolist()
    text = str(cmp)
    assert "spectral" in text and "NMI" in text
    md = cmp.to_markdown()
    assert md.startswith("| method |") and md.count("\n| spectral") >= 1


def test_compare_errors(planted_graph):
    with pytest.raises(ValueError, match="methods"):
        netmod.compare(planted_graph, methods=("spectral", "kmeans"))
    with pytest.raises(ValueError, match="methods"):
        netmod.compare(planted_graph, methods=("leiden", "leiden"))
    with pytest.raises(ValueError, match="n_clusters"):
        netmod.compare(planted_graph, n_clusters=1)


def test_load_weights_state_dict_torchscript_and_pruned(tmp_path):
    model = keras_like_mlp([12, 8, 6, 3], seed=5)
    expected = [m.weight.detach().double().numpy().T for m in model if isinstance(m, torch.nn.Linear)]
    torch.save(model.state_dict(), tmp_path / "m.pt")
    torch.jit.save(torch.jit.script(model), tmp_path / "s.pt")
    for name in ("m.pt", "s.pt"):
        got = load_weights(tmp_path / name, sizes=[12, 8, 6, 3])
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    torch.save(model.state_dict(), tmp_path / "p.pt")
    pruned = load_weights(tmp_path / "p.pt")
    np.testing.assert_array_equal(pruned[0], (model[0].weight_orig * model[0].weight_mask).detach().double().numpy().T)
    assert (pruned[0] == 0).mean() == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="do not match"):
        load_weights(tmp_path / "m.pt", sizes=[12, 8, 6, 4])


class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_crafted_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"0.weight": _RunsCode()}, fh)
    with pytest.raises(ValueError, match="weights_only"):
        load_weights(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_cli_compare_on_saved_model(tmp_path, capsys):
    model = keras_like_mlp([20, 12, 12, 4], seed=1)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert main(["compare", str(tmp_path / "m.pt"), "--n-clusters", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    g = netmod.from_torch(model)
    expected = netmod.compare(g, n_clusters=3, seed=0)
    assert [r["method"] for r in data["rows"]] == [r["method"] for r in expected.rows]
    assert data["partitions"]["spectral"]["labels"] == expected.partitions["spectral"].labels.tolist()
    assert main(["compare", str(tmp_path / "m.pt"), "--n-clusters", "3"]) == 0
    assert "louvain" in capsys.readouterr().out
