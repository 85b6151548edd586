"""Leiden and Louvain wrappers: contract, modularity, planted recovery."""

import igraph as ig
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import netmod
from netmod.synthetic import glorot_weights, prune_by_magnitude

METHODS = [
    ("leiden", {"backend": "igraph", "objective": "modularity"}),
    ("leiden", {"backend": "igraph", "objective": "rb", "resolution": 1.5}),
    ("leiden", {"backend": "igraph", "objective": "cpm", "resolution": 0.05}),
    ("leiden", {"backend": "leidenalg", "objective": "modularity"}),
    ("leiden", {"backend": "leidenalg", "objective": "rb", "resolution": 1.5}),
    ("leiden", {"backend": "leidenalg", "objective": "cpm", "resolution": 0.05}),
    ("louvain", {}),
    ("spectral", {"n_clusters": 4}),
]


def _run(name, graph, seed, kw):
    fn = {"leiden": netmod.leiden, "louvain": netmod.louvain, "spectral": netmod.spectral_clustering}[name]
    return fn(graph, seed=seed, **kw)


def planted(sizes=(12, 10, 14, 9), p_in=0.8, p_out=0.03, seed=0, n_isolated=3):
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    n = truth.size
    same = truth[:, None] == truth[None, :]
    a = (rng.random((n, n)) < np.where(same, p_in, p_out)) * rng.uniform(0.5, 1.5, (n, n))
    a = np.triu(a, 1)
    a = a + a.T
    a = np.pad(a, (0, n_isolated))
    return a, np.concatenate([truth, -np.ones(n_isolated, dtype=int)])


IDS = [f"{n}-{k.get('backend', '')}-{k.get('objective', '')}" for n, k in METHODS]


@pytest.mark.parametrize("name,kw", METHODS, ids=IDS)
def test_contract_every_method(name, kw):
    a, truth = planted()
    isolated = a.sum(axis=1) == 0
    p = _run(name, a, 3, kw)
    assert p.labels.dtype == np.int64 and p.labels.shape == (a.shape[0],)
    np.testing.assert_array_equal(p.labels < 0, isolated)
    kept = p.labels[~isolated]
    assert set(kept.tolist()) == set(range(p.n_clusters))
    sizes = np.bincount(kept)
    assert (np.diff(sizes) <= 0).all(), "clusters are numbered from the largest"
    again = _run(name, a, 3, kw)
    np.testing.assert_array_equal(p.labels, again.labels)
    assert p.ncut == pytest.approx(netmod.ncut(a, p.labels), rel=1e-12)


@pytest.mark.parametrize("backend", ["igraph", "leidenalg"])
def test_weighted_modularity_matches_igraph(backend):
    a, _ = planted(seed=2)
    p = netmod.leiden(a, backend=backend, seed=0)
    g = netmod.to_igraph(a)
    member = p.labels.copy()
    member[member < 0] = member.max() + 1 + np.arange((member < 0).sum())
    expected = g.modularity(member.tolist(), weights="weight")
    assert netmod.modularity(a, p.labels) == pytest.approx(expected, abs=1e-12)
    spectral = netmod.spectral_clustering(a, n_clusters=3, seed=0)
    sm = spectral.labels.copy()
    sm[sm < 0] = sm.max() + 1 + np.arange((sm < 0).sum())
    expected_spectral = g.modularity(sm.tolist(), weights="weight")
    assert netmod.modularity(a, spectral.labels) == pytest.approx(expected_spectral, abs=1e-12)
    assert p.info["modularity"] == pytest.approx(expected, abs=1e-12)
    unweighted = g.modularity(member.tolist())
    assert abs(unweighted - expected) > 1e-6, "the weighted value differs from leidenalg's unweighted one"


@pytest.mark.parametrize("backend", ["igraph", "leidenalg"])
def test_leiden_recovers_planted_partition(backend):
    a, truth = planted(sizes=(30, 25, 35, 20, 40), p_in=0.5, p_out=0.02, seed=5)
    p = netmod.leiden(a, backend=backend, seed=1)
    kept = truth >= 0
    assert adjusted_rand_score(truth[kept], p.labels[kept]) >= 0.95


def test_backends_agree_on_pruned_mlp_graph():
    g = netmod.from_layers(prune_by_magnitude(glorot_weights([784, 256, 256, 256, 256, 10], seed=0), 0.9))
    q = [netmod.leiden(g, backend=b, seed=0).info["modularity"] for b in ("igraph", "leidenalg")]
    assert abs(q[0] - q[1]) <= 0.02 * max(q)


def test_seeding_leaves_global_random_state_alone():
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    a, _ = planted()
    netmod.leiden(a, seed=4)
    netmod.louvain(a, seed=4)
    assert random.random() == expected


def test_modularity_rejects_minus_one_on_live_node():
    a, _ = planted()
    labels = np.zeros(a.shape[0], dtype=int)
    labels[0] = -1
    with pytest.raises(ValueError, match="labels"):
        netmod.modularity(a, labels)


@pytest.mark.parametrize("make", [lambda n: np.zeros((n, n)), lambda n: ig.Graph(n=n)],
                         ids=["zero-matrix", "igraph-no-edges"])
def test_edgeless_graph_is_refused(make):
    """Q divides by the total weight: no edges, no modularity and no communities."""
    g = make(5)
    with pytest.raises(ValueError, match="without edges"):
        netmod.modularity(g, [0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="no edges"):
        netmod.leiden(g)
    with pytest.raises(ValueError, match="no edges"):
        netmod.louvain(g)
    # One edge is enough: Q of putting its ends apart is -1/2, igraph agrees.
    a = np.zeros((5, 5))
    a[0, 1] = a[1, 0] = 2.0
    assert netmod.modularity(a, [0, 1, 2, 2, 2]) == pytest.approx(-0.5, abs=1e-15)
    assert netmod.louvain(a).n_clusters == 1


@pytest.mark.parametrize(
    "kw,match",
    [({"objective": "bogus"}, "objective"), ({"backend": "networkx"}, "backend"),
     ({"resolution": -1.0}, "resolution"), ({"n_iterations": 0}, "n_iterations"), ({"seed": -1}, "seed")],
)
def test_leiden_errors(kw, match):
    a, _ = planted()
    with pytest.raises(ValueError, match=match):
        netmod.leiden(a, **kw)


def test_negative_weights_rejected_for_raw_matrices():
    a, _ = planted()
    a[0, 1] = a[1, 0] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        netmod.leiden(a, backend="leidenalg")


def test_layered_graph_uses_absolute_weights():
    w = [np.array([[1.0, -2.0], [-3.0, 0.5]]), np.array([[-1.0], [2.0]])]
    g = netmod.from_layers(w)
    assert netmod.communities.to_igraph(g) is g
    assert min(g.es["weight"]) > 0
    p = netmod.louvain(g)
    assert p.labels.shape == (5,)


def test_directed_igraph_rejected():
    with pytest.raises(ValueError, match="undirected"):
        netmod.leiden(ig.Graph.Ring(5, directed=True))


def test_seeded_runs_leave_python_random_and_igraph_alone():
    import random

    a, _ = planted(seed=3)
    random.seed(11)
    state = random.getstate()
    first = [netmod.louvain(a, seed=5).labels, netmod.leiden(a, seed=5).labels]
    assert random.getstate() == state  # netmod's seeded draws never touch the random module
    again = [netmod.louvain(a, seed=5).labels, netmod.leiden(a, seed=5).labels]
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    # Outside netmod, igraph still draws from the random module, as by default.
    ig.Graph.Erdos_Renyi(n=20, p=0.3)
    assert random.getstate() != state
    random.seed(11)
    g1 = ig.Graph.Erdos_Renyi(n=30, p=0.2).get_edgelist()
    random.seed(11)
    assert ig.Graph.Erdos_Renyi(n=30, p=0.2).get_edgelist() == g1


def test_seeded_runs_are_thread_safe():
    import concurrent.futures

    graphs = [planted(seed=s)[0] for s in range(4)]
    serial = [(netmod.louvain(g, seed=s).labels, netmod.leiden(g, seed=s).labels) for s, g in enumerate(graphs)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda sg: (netmod.louvain(sg[1], seed=sg[0]).labels,
                                             netmod.leiden(sg[1], seed=sg[0]).labels), enumerate(graphs * 3)))
    for i, (lv, ld) in enumerate(threaded):
        np.testing.assert_array_equal(lv, serial[i % 4][0])
        np.testing.assert_array_equal(ld, serial[i % 4][1])


def test_a_generator_set_by_the_user_is_not_overridden():
    import random

    a, _ = planted(seed=1)
    mine = random.Random(3)
    ig.set_random_number_generator(mine)
    try:
        with pytest.raises(RuntimeError, match="set_random_number_generator.*backend='leidenalg'"):
            netmod.louvain(a, seed=0)
        state = mine.getstate()
        ig.Graph.Erdos_Renyi(n=10, p=0.5)
        assert mine.getstate() != state  # still the user's generator
        assert netmod.leiden(a, seed=0, backend="leidenalg").n_clusters >= 2
    finally:
        ig.set_random_number_generator(random)
    assert netmod.louvain(a, seed=0).n_clusters >= 2  # default restored: seeding works again


def test_modularity_objective_refuses_another_resolution():
    a, _ = planted(seed=0)
    with pytest.raises(ValueError, match="resolution must be 1 for objective='modularity'.*'rb'"):
        netmod.leiden(a, objective="modularity", resolution=2)
    rb = netmod.leiden(a, objective="rb", resolution=2, seed=0)
    assert rb.info["resolution"] == 2.0 and rb.info["objective"] == "rb"
    assert netmod.leiden(a, objective="modularity", resolution=1.0, seed=0).info["resolution"] == 1.0


def test_large_seeds_reach_both_backends():
    a, _ = planted(seed=2)
    for backend in ("igraph", "leidenalg"):
        p = netmod.leiden(a, seed=2**64 - 1, backend=backend)
        assert p.seed == 2**64 - 1
    with pytest.raises(ValueError, match="seed must be <= 18446744073709551615"):
        netmod.louvain(a, seed=2**64)
