"""Lesion analysis: the batched fast path against plain full forward passes, calibration, edge cases."""

import copy
import csv
import json

import numpy as np
import pytest
import scipy.stats
import torch

import netmod
from netmod.lesions import LesionDependencies, _random_sets
from netmod.training import prune_mlp, save_model, train_mlp

SIZES = (784, 64, 64, 64, 10)
OFFSETS = np.concatenate([[0], np.cumsum(SIZES)])


@pytest.fixture(scope="module")
def data():
    train = netmod.datasets.load_embedded("train")
    test = netmod.datasets.load_embedded("test")
    return (train.images, train.labels), (test.images, test.labels)


@pytest.fixture(scope="module")
def model(data):
    train, _ = data
    m, _ = train_mlp(train, sizes=SIZES, epochs=1, seed=0, progress=False)
    m, _ = prune_mlp(m, train, epochs=1, final_sparsity=0.8, seed=0, progress=False)
    return m.eval()


@pytest.fixture(scope="module")
def partition(model):
    return netmod.spectral_clustering(netmod.from_torch(model), n_clusters=6, seed=0)


def _x(images):
    return torch.as_tensor(images.reshape(len(images), -1).astype(np.float32) / 255.0)


def naive_correct(model, lesions, images, labels):
    """Per-class correct counts of ``model`` with {layer: units} lesioned: those units' incoming weights and
    biases zeroed, then one full forward pass (Linear, ReLU, ..., Linear) over all images."""
    linears = [mod for mod in model.modules() if isinstance(mod, torch.nn.Linear)]
    h = _x(images).to(linears[0].weight.dtype)
    with torch.no_grad():
        for i, lin in enumerate(linears):
            w, b = lin.weight.clone(), lin.bias.clone()
            if i + 1 in lesions:
                units = torch.as_tensor(np.asarray(lesions[i + 1]), dtype=torch.long)
                w[units] = 0
                b[units] = 0
            h = h @ w.T + b
            if i + 1 < len(linears):
                h = torch.relu(h)
    pred = h.argmax(dim=1).numpy()
    return np.bincount(labels[pred == labels], minlength=10)


def naive_drop(model, lesions, images, labels, base=None):
    base = naive_correct(model, {}, images, labels).sum() if base is None else base
    return (base - naive_correct(model, lesions, images, labels).sum()) / len(labels)


def layer_labels(labels, layer):
    return labels[OFFSETS[layer]:OFFSETS[layer + 1]]


def permuted_within_layers(labels, seed):
    rng = np.random.default_rng(seed)
    out = labels.copy()
    for layer in range(1, len(SIZES) - 1):
        lab = out[OFFSETS[layer]:OFFSETS[layer + 1]]
        live = np.flatnonzero(lab >= 0)
        lab[live] = rng.permutation(lab[live])
    return out


def test_fast_path_equals_full_forward_passes_float64(model, partition, data):
    _, (images, labels) = data
    double = copy.deepcopy(model).double()
    imp = netmod.lesion_importance(double, partition, (images, labels), n_draws=3, seed=3, progress=False)
    assert len(imp.table) >= 6 and {r["layer"] for r in imp.table} == {1, 2, 3}
    base = naive_correct(double, {}, images, labels)
    assert imp.base_accuracy == base.sum() / len(labels)
    totals = np.bincount(labels, minlength=10)
    checked = set()
    for row, null in zip(imp.table, imp.null_drops):
        correct = naive_correct(double, {row["layer"]: row["units"]}, images, labels)
        assert row["drop"] == pytest.approx((base.sum() - correct.sum()) / len(labels), abs=1e-12)
        np.testing.assert_allclose(row["class_drop"], (base - correct) / totals, atol=1e-12)
        if row["layer"] in checked:
            continue
        checked.add(row["layer"])
        live = np.flatnonzero(layer_labels(partition.labels, row["layer"]) >= 0)
        sets = _random_sets(3, (row["layer"], row["cluster"]), live, row["size"], 3)
        expected = [naive_drop(double, {row["layer"]: s}, images, labels, base.sum()) for s in sets]
        np.testing.assert_allclose(null, expected, atol=1e-12)


def test_large_lesions_recomputed_equal_full_forward_passes(model, data):
    # Sub-modules over half their layer take the masked-recompute branch instead of the low-rank update.
    _, (images, labels) = data
    double = copy.deepcopy(model).double()
    lab = np.full(sum(SIZES), -1)
    lab[OFFSETS[2]:OFFSETS[3]] = (np.arange(64) >= 40).astype(int)
    imp = netmod.lesion_importance(double, lab, (images, labels), n_draws=3, seed=1, progress=False)
    base = naive_correct(double, {}, images, labels).sum()
    for row, null in zip(imp.table, imp.null_drops):
        assert row["drop"] == pytest.approx(naive_drop(double, {2: row["units"]}, images, labels, base), abs=1e-12)
        sets = _random_sets(1, (2, row["cluster"]), np.arange(64), row["size"], 3)
        np.testing.assert_allclose(null, [naive_drop(double, {2: s}, images, labels, base) for s in sets],
                                   atol=1e-12)
    assert [r["size"] for r in imp.table] == [40, 24]


def test_fast_path_matches_float32_model_to_one_example(model, partition, data):
    _, (images, labels) = data
    imp = netmod.lesion_importance(model, partition, (images, labels), n_draws=2, progress=False)
    base = naive_correct(model, {}, images, labels).sum()
    assert abs(imp.base_accuracy - base / len(labels)) <= 1 / len(labels)
    for row in imp.table:
        drop = naive_drop(model, {row["layer"]: row["units"]}, images, labels, base)
        assert abs(row["drop"] - drop) <= 2 / len(labels)


def test_other_activations_match_full_forward_passes(data):
    # Sigmoid(0) = 0.5: a lesioned unit still outputs something (the low-rank update shifts by it); an
    # in-place ReLU must not overwrite cached pre-activations; Softmax after the last layer is harmless.
    _, (images, labels) = data
    images, labels = images[:500], labels[:500]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 32),
                                torch.nn.ReLU(inplace=True), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1))
    model = model.double().eval()
    lab = np.full(784 + 32 + 32 + 10, -1)
    lab[784:848] = np.arange(64) % 4
    imp = netmod.lesion_importance(model, lab, (images, labels), n_draws=3, seed=4, progress=False)
    x = _x(images).double()

    def accuracy(layer, units):
        m = copy.deepcopy(model)
        with torch.no_grad():
            m[2 * (layer - 1)].weight[units] = 0
            m[2 * (layer - 1)].bias[units] = 0
            return float((m(x).argmax(1).numpy() == labels).mean())

    assert imp.base_accuracy == float((model(x).argmax(1).numpy() == labels).mean())
    for row, null in zip(imp.table, imp.null_drops):
        assert row["accuracy"] == pytest.approx(accuracy(row["layer"], list(row["units"])), abs=1e-12)
        sets = _random_sets(4, (row["layer"], row["cluster"]), np.arange(32), row["size"], 3)
        expected = [imp.base_accuracy - accuracy(row["layer"], list(s)) for s in sets]
        np.testing.assert_allclose(null, expected, atol=1e-12)
    assert len(imp.table) == 8 and len({r["drop"] for r in imp.table}) > 1


def test_whole_layer_lesion_drops_to_chance(model, data):
    _, (images, labels) = data
    lab = np.full(sum(SIZES), -1)
    lab[OFFSETS[2]:OFFSETS[3]] = 0
    imp = netmod.lesion_importance(model, lab, (images, labels), n_draws=5, progress=False)
    (row,) = imp.table
    assert row["category"] == "complete" and row["size"] == 64 and row["p"] == 1.0
    # Nothing reaches the layers above: one constant prediction, right only for its class.
    class_accuracy = imp.base_class_accuracy - np.array(row["class_drop"])
    np.testing.assert_allclose(np.sort(class_accuracy), [0.0] * 9 + [1.0], atol=1e-12)
    freq = np.bincount(labels, minlength=10) / len(labels)
    assert row["accuracy"] == pytest.approx(freq[np.argmax(class_accuracy)])
    assert 0.05 < row["accuracy"] < 0.2 < imp.base_accuracy - 0.5
    assert np.isnan(imp.combined_p)


def test_dead_units_lesion_changes_nothing(model, data):
    _, (images, labels) = data
    m = copy.deepcopy(model)
    dead = np.arange(10)
    with torch.no_grad():
        m[2].weight[dead] = 0
        m[2].bias[dead] = 0
        m[4].weight[:, dead] = 0
    p = netmod.spectral_clustering(netmod.from_torch(m), n_clusters=6, seed=0)
    assert (layer_labels(p.labels, 2)[dead] == -1).all()
    imp = netmod.lesion_importance(m, p, (images, labels), n_draws=5, progress=False)
    for layer in (1, 2, 3):
        rows = [r for r in imp.table if r["layer"] == layer]
        assert sorted(u for r in rows for u in r["units"]) == list(np.flatnonzero(layer_labels(p.labels, layer) >= 0))
    lab = p.labels.copy()
    lab[OFFSETS[2] + dead] = 99
    imp = netmod.lesion_importance(m, lab, (images, labels), n_draws=5, progress=False)
    (row,) = [r for r in imp.table if r["cluster"] == 99]
    assert row["drop"] == 0.0 and row["accuracy"] == imp.base_accuracy
    assert row["class_drop"] == (0.0,) * 10


def test_deterministic_for_a_seed(model, partition, data):
    _, test = data
    a = netmod.lesion_importance(model, partition, test, n_draws=8, seed=5, progress=False)
    b = netmod.lesion_importance(model, partition, test, n_draws=8, seed=5, progress=False)
    c = netmod.lesion_importance(model, partition, test, n_draws=8, seed=6, progress=False)
    assert a.to_dict() == b.to_dict()
    assert not np.array_equal(a.null_drops, c.null_drops)
    assert [r["drop"] for r in a.table] == [r["drop"] for r in c.table]


def test_random_partition_is_calibrated(model, partition, data):
    # Under a random partition the true set is one more uniform random set of its size, so
    # p = (#{random >= true} + 1)/(n + 1) is uniform on {1/(n+1), ..., 1} (larger with ties).
    _, (images, labels) = data
    test = images[:1000], labels[:1000]
    n_draws = 19
    p_values, important, eligible = [], 0, 0
    for rep in range(12):
        lab = permuted_within_layers(partition.labels, rep)
        imp = netmod.lesion_importance(model, lab, test, n_draws=n_draws, seed=100 + rep, progress=False)
        for row in imp.table:
            if row["category"] == "complete":
                continue
            p_values.append(row["p"])
            eligible += row["size"] > imp.small
            important += row["category"] == "important"
    p = np.array(p_values)
    assert p.size >= 100
    nominal = 1 / (n_draws + 1)
    at_minimum = int(np.count_nonzero(p == nominal))
    assert scipy.stats.binomtest(at_minimum, p.size, nominal, alternative="greater").pvalue > 1e-3
    assert scipy.stats.binomtest(important, eligible, nominal, alternative="greater").pvalue > 1e-3
    # Not merely conservative: the lower half of the p-values holds about half of them.
    below = int(np.count_nonzero(p <= 0.5))
    assert scipy.stats.binomtest(below, p.size, 10 / 20).pvalue > 1e-3


def test_planted_important_and_prunable_submodules_are_found(model, data):
    # Only 16 units of the last hidden layer reach the outputs: lesioning all of them is far worse than
    # lesioning random 16-sets, and lesioning the other 48 changes nothing while random 48-sets hurt.
    _, (images, labels) = data
    m = copy.deepcopy(model)
    with torch.no_grad():
        active = (m[:6](_x(images)) > 0).float().mean(0).numpy()
        keep = np.argsort(-active, kind="stable")[:16]
        cut = np.setdiff1d(np.arange(64), keep)
        m[6].weight[:, cut] = 0
    lab = np.full(sum(SIZES), -1)
    lab[OFFSETS[3]:OFFSETS[4]] = 1
    lab[OFFSETS[3] + keep] = 0
    imp = netmod.lesion_importance(m, lab, (images, labels), n_draws=30, progress=False)
    important, prunable = imp.table
    assert imp.base_accuracy > 0.2  # well above chance (0.1)
    assert important["category"] == "important" and important["p"] == 1 / 31
    assert important["drop"] > imp.null_drops[0].max() and important["z"] > 1
    assert prunable["category"] == "prunable" and prunable["drop"] == 0.0 and prunable["p"] == 1.0
    assert imp.null_drops[1].min() > 0


def test_result_to_dict_and_combined_p(model, partition, data):
    _, test = data
    imp = netmod.lesion_importance(model, partition, test, n_draws=9, seed=2, progress=False)
    d = json.loads(json.dumps(imp.to_dict()))
    assert d["seed"] == 2 and d["n_draws"] == 9 and "numpy" in d["versions"]
    assert len(d["table"]) == len(imp.table) and d["null_drops"] == imp.null_drops.tolist()
    p = np.array([r["p"] for r in imp.table if r["category"] != "complete"]) - 0.5 / 10
    assert imp.combined_p == scipy.stats.combine_pvalues(p, method="fisher").pvalue
    assert not imp.null_drops.flags.writeable
    assert sum(imp.counts().values()) == len(imp.table)
    assert imp.to_markdown().count("\n") == len(imp.table) + 1
    mean, std = imp.null_drops.mean(1), imp.null_drops.std(1)
    for row, m, s in zip(imp.table, mean, std):
        assert row["null_mean"] == pytest.approx(m) and row["null_std"] == pytest.approx(s)
        if s > 0:
            assert row["z"] == pytest.approx((row["drop"] - m) / s)


def test_dataset_object_and_tuple_agree(model, partition, data):
    ds = netmod.datasets.load_embedded("test")
    a = netmod.lesion_importance(model, partition, ds, n_draws=3, progress=False)
    b = netmod.lesion_importance(model, partition.labels, (ds.images.reshape(len(ds.images), -1), ds.labels),
                                 n_draws=3, progress=False)
    assert a.to_dict()["table"] == b.to_dict()["table"]


def test_interaction_and_conditional_tests_match_full_forward_passes(model, partition, data):
    _, (images, labels) = data
    images, labels = images[:500], labels[:500]
    double = copy.deepcopy(model).double()
    lab = np.full(sum(SIZES), -1)
    for layer in (1, 2, 3):
        lab[OFFSETS[layer]:OFFSETS[layer + 1]] = np.arange(64) % 2
    dep = netmod.lesion_dependencies(double, lab, (images, labels), important_only=False, n_draws=3, seed=7,
                                     progress=False)
    assert len(dep.nodes) == 6 and len(dep.pairs) == 12
    units = {i: np.flatnonzero(np.arange(64) % 2 == n["cluster"]) for i, n in enumerate(dep.nodes)}
    live = np.arange(64)
    base = naive_correct(double, {}, images, labels).sum()
    assert dep.base_accuracy == base / len(labels)
    single = [naive_drop(double, {n["layer"]: units[i]}, images, labels, base) for i, n in enumerate(dep.nodes)]
    assert [n["drop"] for n in dep.nodes] == pytest.approx(single, abs=1e-12)
    for r in dep.pairs:
        a, b = dep.nodes[r["i"]], dep.nodes[r["j"]]
        assert a["layer"] < b["layer"]
        single_a, single_b = single[r["i"]], single[r["j"]]
        both = naive_drop(double, {a["layer"]: units[r["i"]], b["layer"]: units[r["j"]]}, images, labels, base)
        assert r["drop_ij"] == pytest.approx(both, abs=1e-12)
        assert dep.interaction[r["i"], r["j"]] == pytest.approx(both - single_a - single_b, abs=1e-12)
        assert dep.interaction[r["j"], r["i"]] == dep.interaction[r["i"], r["j"]]
        key = (a["layer"], a["cluster"], b["layer"], b["cluster"])
        rand_a = [naive_drop(double, {a["layer"]: s, b["layer"]: units[r["j"]]}, images, labels, base)
                  for s in _random_sets(7, (*key, 0), live, 32, 3)]
        rand_b = [naive_drop(double, {a["layer"]: units[r["i"]], b["layer"]: s}, images, labels, base)
                  for s in _random_sets(7, (*key, 1), live, 32, 3)]
        assert r["p_i_given_j"] == (sum(d >= both - 1e-12 for d in rand_a) + 1) / 4
        assert r["p_j_given_i"] == (sum(d >= both - 1e-12 for d in rand_b) + 1) / 4
    assert np.isnan(np.diag(dep.interaction)).all()
    assert np.isnan(dep.interaction[0, 1])  # both in layer 1


def test_dependencies_on_important_submodules(model, partition, data):
    _, test = data
    imp = netmod.lesion_importance(model, partition, test, n_draws=10, progress=False)
    dep = netmod.lesion_dependencies(model, partition, test, importance=imp, n_draws=5, progress=False)
    assert [(n["layer"], n["cluster"]) for n in dep.nodes] == imp.important
    g = dep.graph
    assert g.is_directed() and g.vcount() == len(imp.important)
    assert g.ecount() == sum(r["edge"] is not None for r in dep.pairs)
    json.dumps(dep.to_dict())
    other = netmod.lesion_importance(model, permuted_within_layers(partition.labels, 0), test, n_draws=2,
                                     progress=False)
    with pytest.raises(ValueError, match="importance was computed for another"):
        netmod.lesion_dependencies(model, partition, test, importance=other, progress=False)


def test_dependency_graph_direction():
    nodes = [{"layer": 1, "cluster": c, "size": 20, "drop": 0.05} for c in (0, 1)]
    nodes.append({"layer": 2, "cluster": 0, "size": 20, "drop": 0.05})
    pair = {"drop_i": 0.05, "drop_j": 0.05, "drop_ij": 0.2, "interaction": 0.1}
    pairs = [
        {**pair, "i": 0, "j": 2, "p_i_given_j": 0.02, "p_j_given_i": 0.5, "edge": "i->j"},
        {**pair, "i": 1, "j": 2, "p_i_given_j": 0.5, "p_j_given_i": 0.02, "edge": "j->i"},
    ]
    g = LesionDependencies(nodes=nodes, pairs=pairs, interaction=np.zeros((3, 3)), n_draws=49, seed=0,
                           base_accuracy=0.9).graph
    assert sorted(g.get_edgelist()) == [(0, 2), (2, 1)]
    assert g.vs["name"] == ["1:0", "1:1", "2:0"]
    assert g.es["p_source_given_target"] == [0.02, 0.02]


def test_errors(model, partition, data):
    _, test = data
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        netmod.lesion_importance("model", partition, test)
    with pytest.raises(ValueError, match="one label per unit"):
        netmod.lesion_importance(model, partition.labels[:-1], test)
    with pytest.raises(TypeError, match="integer label array"):
        netmod.lesion_importance(model, partition.labels.astype(float), test)
    with pytest.raises(ValueError, match="labels must be >= -1"):
        netmod.lesion_importance(model, np.full(sum(SIZES), -2), test)
    with pytest.raises(TypeError, match="dataset must be"):
        netmod.lesion_importance(model, partition, test[0])
    with pytest.raises(ValueError, match="784 values each"):
        netmod.lesion_importance(model, partition, (test[0][:, :20], test[1]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        netmod.lesion_importance(model, partition, (test[0], test[1].astype(int) + 5))
    with pytest.raises(TypeError, match="images must be uint8"):
        netmod.lesion_importance(model, partition, (test[0].astype(np.int32), test[1]))
    with pytest.raises(ValueError, match="n_draws must be >= 1, got 0"):
        netmod.lesion_importance(model, partition, test, n_draws=0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        netmod.lesion_importance(model, partition, test, seed=-1)
    with pytest.raises(ValueError, match="min_drop must be <= 1, got 2"):
        netmod.lesion_importance(model, partition, test, min_drop=2)
    with pytest.raises(ValueError, match="hidden layer"):
        netmod.lesion_importance(torch.nn.Linear(784, 10), np.zeros(794, dtype=int), test)
    with pytest.raises(ValueError, match="elementwise activations"):
        netmod.lesion_importance(torch.nn.Sequential(torch.nn.Linear(784, 8), torch.nn.Softmax(dim=1),
                                                     torch.nn.Linear(8, 10)), np.zeros(802, dtype=int), test)
    with pytest.raises(TypeError, match="importance must be a LesionImportance"):
        netmod.lesion_dependencies(model, partition, test, importance={})
    with pytest.raises(TypeError, match="important_only must be a bool"):
        netmod.lesion_dependencies(model, partition, test, important_only=1)


class _Skip(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(784, 784), torch.nn.Linear(784, 10)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x)


def test_functional_forward_is_refused(data):
    _, test = data
    with pytest.raises(ValueError, match="functional code"):
        netmod.lesion_importance(_Skip(), np.zeros(784 * 2 + 10, dtype=int), test)


def test_cli_lesion_writes_tables_and_figures(model, data, tmp_path, capsys):
    from netmod.cli import main

    path = tmp_path / "m.pt"
    save_model(model, path)
    out = tmp_path / "out"
    assert main(["lesion", str(path), "--dataset", "embedded", "--n-clusters", "6", "--draws", "10",
                 "--dependency-draws", "5", "--seed", "1", "--out", str(out)]) == 0
    for name in ("importance.csv", "importance.md", "importance.png", "dependencies.png", "dependencies.csv",
                 "lesions.json"):
        assert (out / name).stat().st_size > 0, name
    p = netmod.spectral_clustering(netmod.from_torch(model), n_clusters=6, seed=1)
    imp = netmod.lesion_importance(model, p, netmod.datasets.load_embedded("test"), n_draws=10, seed=1,
                                   progress=False)
    with open(out / "importance.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["layer"]), int(r["cluster"]), r["category"]) for r in rows] == \
        [(r["layer"], r["cluster"], r["category"]) for r in imp.table]
    assert [float(r["drop"]) for r in rows] == pytest.approx([r["drop"] for r in imp.table])
    saved = json.loads((out / "lesions.json").read_text())
    assert saved["importance"]["n_draws"] == 10 and saved["partition"]["n_clusters"] == 6
    assert "category" in capsys.readouterr().out


def test_cli_lesion_reports_missing_model(tmp_path, capsys):
    from netmod.cli import main

    assert main(["lesion", str(tmp_path / "none.pt"), "--dataset", "embedded"]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_cli_lesion_reports_bad_settings(model, tmp_path, capsys):
    from netmod.cli import main

    save_model(model, tmp_path / "m.pt")
    assert main(["lesion", str(tmp_path / "m.pt"), "--dataset", "embedded", "--n-clusters", "4",
                 "--draws", "0", "--out", str(tmp_path / "out")]) == 2
    assert "n_draws must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
