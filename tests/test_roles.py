"""node_roles(): participation coefficient and within-module z-score against bctpy and a numpy twin."""

import json

import igraph as ig
import numpy as np
import pytest
import scipy.sparse

bct = pytest.importorskip("bct")

import netmod
from netmod import roles as roles_module
from netmod.roles import FLAT_RTOL, ROLE_NAMES

TOL = 1e-10


def twin(A, labels, hub_zscore=2.5):
    """Dense numpy twin of node_roles with its documented conventions (NaN for left-out
    nodes, P NaN for zero-degree nodes, z = 0 in flat modules)."""
    A = np.asarray(A, dtype=np.float64)
    labels = np.asarray(labels)
    n, n_clusters = labels.size, int(labels.max()) + 1
    kept = labels >= 0
    onehot = (labels[:, None] == np.arange(n_clusters)[None, :]).astype(np.float64)
    per_module = A @ onehot
    k = A.sum(axis=1)
    within = np.where(kept, per_module[np.arange(n), np.maximum(labels, 0)], np.nan)
    live = kept & (k > 0)
    P = np.full(n, np.nan)
    P[live] = 1.0 - ((per_module[live] / k[live, None]) ** 2).sum(axis=1)
    z = np.full(n, np.nan)
    flat = np.zeros(n_clusters, dtype=bool)
    for s in range(n_clusters):
        members = labels == s
        x = within[members]
        if x.size == 0:
            continue
        flat[s] = x.max() - x.min() <= FLAT_RTOL * x.max()
        z[members] = 0.0 if flat[s] else (x - x.mean()) / x.std()
    roles = np.zeros(n, dtype=np.int64)
    hub, nonhub = live & (z >= hub_zscore), live & (z < hub_zscore)
    roles[nonhub & (P <= 0.05)] = 1
    roles[nonhub & (P > 0.05) & (P <= 0.62)] = 2
    roles[nonhub & (P > 0.62) & (P <= 0.80)] = 3
    roles[nonhub & (P > 0.80)] = 4
    roles[hub & (P <= 0.30)] = 5
    roles[hub & (P > 0.30) & (P <= 0.75)] = 6
    roles[hub & (P > 0.75)] = 7
    return {"participation": P, "zscore": z, "strength": np.where(kept, k, np.nan), "within_strength": within,
            "roles": roles, "flat": flat, "live": live}


def assert_matches_twin(r, A, labels, hub_zscore=2.5):
    t = twin(A, labels, hub_zscore)
    for name in ("participation", "zscore", "strength", "within_strength"):
        np.testing.assert_allclose(getattr(r, name), t[name], rtol=0, atol=TOL, equal_nan=True, err_msg=name)
    np.testing.assert_array_equal(r.roles, t["roles"])
    assert r.info["flat_clusters"] == np.flatnonzero(t["flat"]).tolist()
    for c, row in enumerate(r.clusters()):
        members = labels == c
        assert row["size"] == members.sum()
        live = members & t["live"]
        assert row["mean_participation"] == pytest.approx(t["participation"][live].mean(), abs=TOL)
        assert row["max_zscore"] == pytest.approx(t["zscore"][members].max(), abs=TOL)
        assert row["within_mean"] == pytest.approx(t["within_strength"][members].mean(), rel=1e-12)
        if not t["flat"][c]:
            assert row["within_std"] == pytest.approx(t["within_strength"][members].std(), rel=1e-10)
        assert row["internal_fraction"] == pytest.approx(
            t["within_strength"][members].sum() / t["strength"][members].sum(), rel=1e-12)
        assert list(row["role_counts"].values()) == [int((t["roles"][members] == q).sum()) for q in range(1, 8)]
    return t


def assert_matches_bct(r, A, labels):
    """P and z equal bctpy's to 1e-10 wherever both are defined: P on nodes with edges,
    z on the members of modules that are not flat."""
    A = np.asarray(A, dtype=np.float64)
    t = twin(A, labels)
    with np.errstate(invalid="ignore"):  # bctpy divides 0 by 0 on the cases it sets to 0
        p_bct, z_bct = bct.participation_coef(A, labels), bct.module_degree_zscore(A, labels)
    live = t["live"]
    assert live.sum() > 0
    np.testing.assert_allclose(r.participation[live], p_bct[live], rtol=0, atol=TOL)
    defined = (labels >= 0) & ~t["flat"][np.maximum(labels, 0)]
    assert defined.sum() > 0
    np.testing.assert_allclose(r.zscore[defined], z_bct[defined], rtol=0, atol=TOL)


@pytest.fixture(scope="module")
def karate():
    g = ig.Graph.Famous("Zachary")
    g.es["weight"] = np.random.default_rng(16).uniform(0.1, 3.0, g.ecount()).tolist()
    return g, np.array(g.get_adjacency(attribute="weight").data, dtype=np.float64)


@pytest.mark.parametrize("method", ["leiden", "spectral"])
def test_karate_club_matches_bctpy_and_twin(karate, method):
    g, A = karate
    p = netmod.leiden(g, seed=0) if method == "leiden" else netmod.spectral_clustering(g, n_clusters=4, seed=0)
    r = netmod.node_roles(g, p)
    assert r.info["operator"] == "csr" and r.n_clusters == p.n_clusters
    assert_matches_bct(r, A, p.labels)
    assert_matches_twin(r, A, p.labels)
    assert r.summary()["n_nodes"] == 34 and np.isfinite(r.participation).all()
    # Every accepted form of the same graph gives the same numbers.
    for form in (A, scipy.sparse.csr_matrix(A), scipy.sparse.coo_array(A), A.tolist()):
        other = netmod.node_roles(form, p.labels)
        np.testing.assert_allclose(other.participation, r.participation, rtol=0, atol=1e-14)
        np.testing.assert_allclose(other.zscore, r.zscore, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(other.roles, r.roles)


def test_karate_club_unweighted_hubs(karate):
    """The unweighted club with Leiden: bctpy agrees, and the two leaders (nodes 0 and 33, the
    highest degrees) have the top z-scores of their modules."""
    g = ig.Graph.Famous("Zachary")
    A = np.array(g.get_adjacency().data, dtype=np.float64)
    p = netmod.leiden(g, seed=0)
    r = netmod.node_roles(g, p)
    assert_matches_bct(r, A, p.labels)
    assert_matches_twin(r, A, p.labels)
    for leader in (0, 33):
        members = p.labels == p.labels[leader]
        assert r.zscore[leader] == r.zscore[members].max()


@pytest.fixture(scope="module")
def trained_mlp():
    torch = pytest.importorskip("torch")
    from netmod.datasets import load_embedded
    from netmod.training import train_mlp

    tr = load_embedded("train")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, _ = train_mlp((tr.images[:2000], tr.labels[:2000]), sizes=(784, 48, 32, 10), epochs=1, seed=0,
                             progress=False)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def test_trained_mlp_matches_bctpy(trained_mlp, layered_adjacency):
    g = netmod.from_torch(trained_mlp)
    weights = netmod.layer_weights(g)
    A = layered_adjacency(weights)
    for p in (netmod.spectral_clustering(g, n_clusters=6, seed=0), netmod.leiden(g, seed=0)):
        r = netmod.node_roles(g, p)
        assert r.info["operator"] == "layered"
        assert_matches_bct(r, A, p.labels)
        assert_matches_twin(r, A, p.labels)
        # The torch module itself and the plain weight list are the same graph.
        for form in (trained_mlp, list(weights)):
            np.testing.assert_array_equal(netmod.node_roles(form, p).participation, r.participation)


def test_block_graph_with_skip_matches_dense(monkeypatch):
    rng = np.random.default_rng(3)
    sizes, pairs = (7, 9, 6, 5), [(0, 1), (1, 2), (0, 2), (2, 3), (1, 3)]
    blocks = [rng.normal(size=(sizes[s], sizes[d])) * (rng.random((sizes[s], sizes[d])) < 0.6) for s, d in pairs]
    g = netmod.from_blocks(blocks, sizes=sizes, pairs=pairs)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    A = np.zeros((offsets[-1], offsets[-1]))
    for (s, d), b in zip(pairs, blocks):
        A[offsets[s]:offsets[s + 1], offsets[d]:offsets[d + 1]] = np.abs(b)
    A = A + A.T
    labels = rng.integers(0, 4, size=A.shape[0])
    r = netmod.node_roles(g, labels)
    assert r.info["operator"] == "blocks"
    assert_matches_twin(r, A, labels)
    assert_matches_bct(r, A, labels)
    # Blocks read a few rows at a time, and summed by gathering columns instead of by a
    # product with the membership matrix, give the same sums.
    monkeypatch.setattr(roles_module, "_CHUNK", 5)
    for groups in (64, 0):
        monkeypatch.setattr(roles_module, "_MATMUL_GROUPS", groups)
        other = netmod.node_roles(g, labels)
        np.testing.assert_allclose(other.participation, r.participation, rtol=0, atol=1e-14)
        np.testing.assert_allclose(other.zscore, r.zscore, rtol=0, atol=1e-12)


def test_disconnected_graph_with_left_out_nodes(random_weighted_graph):
    """Four components and three isolated nodes: spectral clustering leaves the isolated
    ones out (-1); they get NaN, the rest equals bctpy on the whole graph (where the
    isolated nodes form their own module, reaching no one) and on the graph without them."""
    A = random_weighted_graph(5)
    p = netmod.spectral_clustering(A, n_clusters=4, seed=0)
    left_out = p.labels < 0
    assert left_out.sum() == 3
    r = netmod.node_roles(A, p)
    assert np.isnan(r.participation[left_out]).all() and np.isnan(r.zscore[left_out]).all()
    assert np.isnan(r.strength[left_out]).all() and (r.roles[left_out] == 0).all()
    assert r.info["n_left_out"] == 3 and r.info["n_isolated"] == 0
    assert_matches_twin(r, A, p.labels)
    assert_matches_bct(r, A, p.labels)
    keep = ~left_out
    sub = netmod.node_roles(A[np.ix_(keep, keep)], p.labels[keep])
    np.testing.assert_allclose(sub.participation, r.participation[keep], rtol=0, atol=1e-14)
    np.testing.assert_allclose(sub.zscore, r.zscore[keep], rtol=0, atol=1e-12)
    # The components are exactly the modules: no node has weight outside its own.
    comp = np.asarray(netmod.to_igraph(A).connected_components().membership)
    by_component = netmod.node_roles(A, np.where(left_out, -1, comp))
    assert np.nanmax(by_component.participation) == 0.0
    np.testing.assert_array_equal(by_component.cluster_internal_fraction[by_component.cluster_sizes > 1], 1.0)


def test_pruned_mlp_dead_units(pruned_mlp_weights, layered_adjacency):
    """Dead units of a pruned layered net are left out by spectral clustering; a zero-degree
    node kept inside a module has P = NaN (bctpy: 0) but a z-score like bctpy's."""
    weights = pruned_mlp_weights(7)
    A = layered_adjacency(weights)
    p = netmod.spectral_clustering(weights, n_clusters=3, seed=0)
    dead = A.sum(axis=1) == 0
    np.testing.assert_array_equal(p.labels < 0, dead)
    r = netmod.node_roles(weights, p)
    assert_matches_twin(r, A, p.labels)
    assert_matches_bct(r, A, p.labels)
    labels = p.labels.copy()
    labels[dead] = 0
    r0 = netmod.node_roles(netmod.from_layers(weights), labels)
    assert r0.info == {"n_left_out": 0, "n_isolated": int(dead.sum()), "flat_clusters": [], "operator": "layered"}
    assert np.isnan(r0.participation[dead]).all() and (r0.roles[dead] == 0).all()
    with np.errstate(invalid="ignore"):
        p_bct, z_bct = bct.participation_coef(A, labels), bct.module_degree_zscore(A, labels)
    np.testing.assert_allclose(r0.participation[~dead], p_bct[~dead], rtol=0, atol=TOL)
    np.testing.assert_allclose(r0.zscore, z_bct, rtol=0, atol=TOL)
    assert_matches_twin(r0, A, labels)


def test_flat_and_singleton_modules():
    """A triangle of 0.1 edges: every member is at its module's mean, z = 0 (bctpy divides
    round-off by round-off there); a singleton module: z = 0, its one edge all outside."""
    A = np.zeros((7, 7))
    for i, j, w in [(0, 1, 0.1), (0, 2, 0.1), (1, 2, 0.1), (2, 3, 0.5), (3, 4, 1.0), (4, 5, 2.0), (5, 6, 1.5),
                    (3, 5, 0.7)]:
        A[i, j] = A[j, i] = w
    labels = np.array([0, 0, 0, 1, 1, 1, 2])
    r = netmod.node_roles(A, labels)
    np.testing.assert_array_equal(r.zscore[[0, 1, 2, 6]], 0.0)
    assert r.info["flat_clusters"] == [0, 2] and r.cluster_within_std[0] == 0.0
    assert r.participation[6] == 0.0 and r.cluster_internal_fraction[2] == 0.0
    assert np.abs(r.zscore[3:6]).max() > 0.5
    assert_matches_twin(r, A, labels)
    with np.errstate(invalid="ignore"):
        z_bct = bct.module_degree_zscore(A, labels)
    np.testing.assert_allclose(r.zscore[3:6], z_bct[3:6], rtol=0, atol=TOL)


def test_roles_and_hub_threshold(sbm_adjacency):
    """On a stochastic block model with a few planted hubs, the roles follow the
    Guimera-Amaral thresholds (the twin's explicit comparisons), at any hub threshold."""
    A, blocks = sbm_adjacency(11, block_sizes=(40, 30, 30, 20), p_in=0.15, p_out=0.04)
    rng = np.random.default_rng(0)
    for hub in (0, 45, 80):
        same = np.flatnonzero(blocks == blocks[hub])
        A[hub, same] = A[same, hub] = rng.uniform(1.0, 2.0, same.size)
        A[hub, hub] = 0.0
    r = netmod.node_roles(A, blocks)
    t = assert_matches_twin(r, A, blocks)
    assert {0, 45, 80} <= set(r.hubs.tolist())
    assert r.summary()["n_hubs"] == (t["roles"] >= 5).sum() == r.hubs.size
    low = netmod.node_roles(A, blocks, hub_zscore=0.5)
    t = assert_matches_twin(low, A, blocks, hub_zscore=0.5)
    assert len(set(t["roles"].tolist())) >= 4
    assert low.role_names.tolist() == [ROLE_NAMES[q] for q in t["roles"]]
    counts = low.summary()["role_counts"]
    assert list(counts) == list(ROLE_NAMES[1:]) and sum(counts.values()) == A.shape[0]
    assert low.summary()["n_connectors"] == int(np.isin(t["roles"], [3, 6]).sum())


def test_scale_invariance_without_overflow(karate):
    """Weights scaled by 2**1000 (squares would overflow), 2**1020 (strengths would), 2**-1000
    or 2**-1070 (subnormal) give the same P and z bits, and strengths scaled the same way."""
    g, A = karate
    A = np.ceil(A * 4) / 4  # quarters: exact in the subnormals at 2**-1070 too
    labels = netmod.leiden(g, seed=0).labels
    r = netmod.node_roles(A, labels)
    with np.errstate(over="ignore"):
        assert np.isinf(np.ldexp(r.strength, 1020)).any() and np.isfinite(np.ldexp(A, 1020)).all()
        for e in (1000, 1020, -1000, -1070):
            s = netmod.node_roles(np.ldexp(A, e), labels)
            np.testing.assert_array_equal(s.participation, r.participation)
            np.testing.assert_array_equal(s.zscore, r.zscore)
            np.testing.assert_array_equal(s.strength, np.ldexp(r.strength, e))
            np.testing.assert_array_equal(s.cluster_within_std, np.ldexp(r.cluster_within_std, e))


def test_partition_keeps_numbering_and_array_is_compacted():
    A = np.ones((5, 5)) - np.eye(5)
    p = netmod.Partition(labels=[0, 0, 2, 2, 2], n_clusters=3, ncut=0.0, eigenvalues=[], method="given", seed=0,
                         n_init=1, tol=0.0)
    r = netmod.node_roles(A, p)
    assert r.n_clusters == 3 and r.cluster_sizes.tolist() == [2, 0, 3]
    assert np.isnan(r.cluster_mean_participation[1]) and np.isnan(r.cluster_within_mean[1])
    a = netmod.node_roles(A, [7, 7, 9, 9, 9])
    assert a.n_clusters == 2 and a.labels.tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(a.participation, r.participation)
    np.testing.assert_array_equal(a.zscore, r.zscore)


def test_result_is_frozen_and_json_ready(random_weighted_graph):
    A = random_weighted_graph(2)
    r = netmod.node_roles(A, netmod.spectral_clustering(A, n_clusters=3, seed=0))
    for name in ("participation", "zscore", "roles", "labels", "cluster_role_counts"):
        with pytest.raises(ValueError):
            getattr(r, name)[0] = 0
    with pytest.raises(AttributeError):
        r.n_clusters = 2
    data = json.loads(json.dumps(r.to_dict()))
    assert data["participation"][int(np.flatnonzero(r.labels < 0)[0])] is None
    assert data["summary"] == json.loads(json.dumps(r.summary()))
    assert len(data["clusters"]) == r.n_clusters
    assert "mean_participation" in repr(r)


def test_compare_reports_roles():
    """Three cliques of 8 whose hubs (node 0 of each, strong inside) are joined by strong
    edges: every method finds the cliques, and the hubs are connector hubs, z = sqrt(7)."""
    a = np.kron(np.eye(3), np.ones((8, 8))) - np.eye(24)
    hubs = [0, 8, 16]
    for h in hubs:
        a[h, h + 1:h + 8] = a[h + 1:h + 8, h] = 2.0
    for h, o in [(0, 8), (0, 16), (8, 16)]:
        a[h, o] = a[o, h] = 3.0
    cmp = netmod.compare(a, n_clusters=3, seed=0)
    for row in cmp.rows:
        p = cmp.partitions[row["method"]]
        expected = netmod.node_roles(a, p)
        for key in ("mean_participation", "n_hubs", "n_connector_hubs", "n_connectors", "role_counts"):
            assert row[key] == expected.summary()[key]
        np.testing.assert_array_equal(cmp.roles[row["method"]].zscore, expected.zscore)
        assert row["n_connector_hubs"] == row["n_hubs"] == 3
    spectral = cmp.roles["spectral"]
    np.testing.assert_allclose(spectral.zscore[hubs], np.sqrt(7.0), rtol=1e-12)
    np.testing.assert_allclose(spectral.participation[hubs], 1 - (14 / 20) ** 2 - 2 * (3 / 20) ** 2, rtol=1e-12)
    assert spectral.role_names[hubs].tolist() == ["connector hub"] * 3
    data = json.loads(json.dumps(cmp.to_dict()))
    assert data["roles"]["spectral"]["roles"] == spectral.roles.tolist()
    assert data["rows"][0]["mean_participation"] == pytest.approx(spectral.summary()["mean_participation"])
    md = cmp.to_markdown()
    assert "| mean P | hubs | connector hubs |" in md
    assert f"| {cmp.rows[0]['mean_participation']:.4f} | 3 | 3 |" in md
    assert "mean P" in str(cmp) and f"{cmp.rows[0]['mean_participation']:.4f}" in str(cmp)


def test_errors(karate):
    g, A = karate
    labels = netmod.leiden(g, seed=0).labels
    with pytest.raises(ValueError, match="one entry per node"):
        netmod.node_roles(A, labels[:-1])
    with pytest.raises(ValueError, match="one entry per node"):
        netmod.node_roles(A[:-1, :-1], netmod.leiden(g, seed=0))
    with pytest.raises(ValueError, match="integer-valued"):
        netmod.node_roles(A, labels + 0.5)
    with pytest.raises(TypeError, match="integer array"):
        netmod.node_roles(A, np.array(["a"] * 34))
    with pytest.raises(ValueError, match=">= -1"):
        netmod.node_roles(A, np.where(labels == 0, -2, labels))
    with pytest.raises(ValueError, match="-1 is allowed only on zero-degree nodes, got -1 on node 0"):
        netmod.node_roles(A, np.where(np.arange(34) == 0, -1, labels))
    with pytest.raises(ValueError, match="-1 is allowed only on zero-degree nodes"):
        netmod.node_roles(netmod.from_layers([np.ones((3, 2))]), [0, 0, -1, 1, 1])
    with pytest.raises(ValueError, match="hub_zscore must be finite"):
        netmod.node_roles(A, labels, hub_zscore=float("nan"))
    with pytest.raises(TypeError, match="hub_zscore must be a number"):
        netmod.node_roles(A, labels, hub_zscore="2.5")
    with pytest.raises(TypeError, match="graph must be"):
        netmod.node_roles({"a": 1}, labels)
    with pytest.raises(ValueError, match="non-negative"):
        netmod.node_roles(-A, labels)
    with pytest.raises(ValueError, match="symmetric"):
        netmod.node_roles(np.triu(A), labels)
    with pytest.raises(TypeError):
        netmod.node_roles(A, labels, 2.5)
