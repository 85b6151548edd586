"""A graph owns its weights: edits to a from_layers/from_torch graph are never answered with stale weights.

Every check compares the igraph graph, as edited, with an independent reading
of it (its scipy adjacency, or the dense numpy twin in conftest), never with
netmod's own layered path.
"""

import igraph as ig
import numpy as np
import pytest
import scipy.sparse

import netmod
from netmod import graphs
from netmod.synthetic import glorot_weights, prune_by_magnitude

SIZES = [30, 20, 20, 8]


@pytest.fixture()
def weights():
    return prune_by_magnitude(glorot_weights(SIZES, seed=3), 0.5)


def adjacency(g):
    """The graph as igraph holds it now, read through igraph's own API."""
    return scipy.sparse.csr_matrix(g.get_adjacency_sparse(attribute="weight"))


def operator(g):
    return netmod.spectral_clustering(g, n_clusters=3, seed=0).info["operator"]


def test_unedited_graph_is_clustered_block_by_block(weights):
    g = netmod.from_layers(weights)
    assert operator(g) == "layered"
    assert operator(g.copy()) == "layered"
    g.es["weight"] = list(g.es["weight"])  # the same values again: not an edit
    assert operator(g) == "layered"


def test_weights_edited_in_place_give_the_edited_answer(weights, ncut_reference):
    g = netmod.from_layers(weights)
    labels = netmod.spectral_clustering(g, n_clusters=3, seed=0).labels
    before = netmod.ncut(g, labels)
    rng = np.random.default_rng(0)
    edited = np.asarray(g.es["weight"]) * rng.uniform(0.2, 3.0, size=g.ecount())
    g.es["weight"] = edited.tolist()
    assert g.ecount() == sum(int(np.count_nonzero(w)) for w in weights)  # same edge count
    a = adjacency(g)
    expected = ncut_reference(a.toarray(), labels)
    assert netmod.ncut(g, labels) == pytest.approx(expected, rel=1e-12)
    assert netmod.ncut(g, labels) != pytest.approx(before, rel=1e-6)
    assert netmod.ncut(g, labels) == netmod.ncut(a, labels)
    assert operator(g) == "csr"
    np.testing.assert_array_equal(netmod.spectral_clustering(g, n_clusters=3, seed=0).labels,
                                  netmod.spectral_clustering(a, n_clusters=3, seed=0).labels)


def test_one_edited_weight_is_seen(weights, ncut_reference):
    g = netmod.from_layers(weights)
    labels = np.arange(g.vcount()) % 3
    g.es[7]["weight"] = g.es[7]["weight"] * (1 + 2**-40)  # one weight, a few ulps
    assert operator(g) == "csr"
    assert netmod.ncut(g, labels) == pytest.approx(ncut_reference(adjacency(g).toarray(), labels), rel=1e-12)


def test_null_and_layer_weights_of_an_edited_graph_are_the_edited_network(weights):
    g = netmod.from_layers(weights)
    rng = np.random.default_rng(1)
    g.es["weight"] = (np.asarray(g.es["weight"]) * rng.uniform(0.5, 2.0, size=g.ecount())).tolist()
    # The network the edited graph describes, built independently from its adjacency.
    a = adjacency(g).toarray()
    offsets = np.cumsum([0] + SIZES)
    expected = [a[offsets[l]:offsets[l + 1], offsets[l + 1]:offsets[l + 2]] for l in range(len(SIZES) - 1)]
    for got, want in zip(netmod.layer_weights(g), expected):
        np.testing.assert_array_equal(got, want)
    null = netmod.shuffle_null(g, n_shuffles=6, n_clusters=3, seed=4, progress=False)
    twin = netmod.shuffle_null(expected, n_shuffles=6, n_clusters=3, seed=4, progress=False)
    np.testing.assert_array_equal(null.samples, twin.samples)
    assert null.observed == twin.observed
    stale = netmod.shuffle_null(weights, n_shuffles=6, n_clusters=3, seed=4, progress=False)
    assert not np.array_equal(null.samples, stale.samples)


def test_signs_do_not_change_the_null(weights):
    """An edited graph's layers are read as |w|: its null equals the signed network's."""
    g = netmod.from_layers(weights)
    g.es["weight"] = list(g.es["weight"])[::-1]  # a real edit...
    g.es["weight"] = list(g.es["weight"])[::-1]  # ...undone: the stored signed weights apply again
    assert netmod.layer_weights(g)[0].min() < 0
    h = netmod.from_layers([np.abs(w) for w in weights])
    for shuffle in ("layer", "nonzero"):
        a = netmod.shuffle_null(g, n_shuffles=5, shuffle=shuffle, n_clusters=3, seed=2, progress=False)
        b = netmod.shuffle_null(h, n_shuffles=5, shuffle=shuffle, n_clusters=3, seed=2, progress=False)
        np.testing.assert_array_equal(a.samples, b.samples)


@pytest.mark.parametrize("edit", ["rewire_edges", "rewire", "permute_vertices", "delete_and_add",
                                  "stored_weights_replaced", "weight_attribute_deleted"])
def test_structural_edits_are_never_answered_with_stale_weights(weights, edit, ncut_reference):
    g = netmod.from_layers(weights)
    rng = np.random.default_rng(5)
    if edit == "rewire_edges":
        g.rewire_edges(0.2)  # moves edge endpoints in place: the weight list is unchanged
    elif edit == "rewire":
        g.rewire(n=50)
    elif edit == "permute_vertices":
        g = g.permute_vertices(rng.permutation(g.vcount()).tolist())
    elif edit == "delete_and_add":
        last = g.es[g.ecount() - 1]
        w, (u, v) = last["weight"], last.tuple
        g.delete_edges([0, g.ecount() - 1])
        g.add_edges([(u, v), (v, u)], attributes={"weight": [w, 0.5]})
    elif edit == "stored_weights_replaced":
        g["layer_weights"] = [w * 2 for w in weights]
    else:
        del g.es["weight"]
    labels = rng.integers(0, 3, size=g.vcount())
    if edit == "rewire":  # igraph's rewire drops the edge attributes: no weights to cluster
        assert g.es["weight"] == [None] * g.ecount()
        with pytest.raises(ValueError, match="edge weights must be numbers"):
            netmod.ncut(g, labels)
        return
    a = adjacency(g) if "weight" in g.es.attributes() else scipy.sparse.csr_matrix(g.get_adjacency_sparse())
    assert netmod.ncut(g, labels) == pytest.approx(ncut_reference(a.toarray(), labels), rel=1e-12)
    if edit == "stored_weights_replaced":
        assert operator(g) == "csr"


def test_compare_scores_the_graph_it_is_given(weights):
    g = netmod.from_layers(weights)
    g.es["weight"] = (np.asarray(g.es["weight"]) ** 2).tolist()
    cmp = netmod.compare(g, methods=("spectral", "louvain"), n_clusters=3, seed=0)
    a = adjacency(g)
    for row in cmp.rows:
        labels = cmp.partitions[row["method"]].labels
        assert row["ncut"] == pytest.approx(netmod.ncut(a, labels), rel=1e-12)
        assert row["modularity"] == pytest.approx(netmod.modularity(a, labels), rel=1e-12)


def test_raw_endpoint_reader_agrees_with_igraph(weights):
    g = netmod.from_layers(weights)
    for step in range(4):
        raw = graphs._raw_endpoints(g)
        assert raw is not None
        ref = np.asarray(g.get_edgelist())
        np.testing.assert_array_equal(np.sort(np.column_stack(raw), axis=1), np.sort(ref, axis=1))
        g.delete_edges([step])
        g.add_edges([(step, g.vcount() - 1)])
    assert graphs._raw_endpoints(ig.Graph(n=3)) is None  # no edges: nothing to read


def test_without_the_raw_reader_the_answers_are_the_same(weights, monkeypatch):
    g = netmod.from_layers(weights)
    fast = netmod.spectral_clustering(g, n_clusters=3, seed=0)
    g2 = g.copy()
    g2.rewire_edges(0.3)
    fast_edited = netmod.ncut(g2, fast.labels)
    monkeypatch.setattr(graphs, "_raw_endpoints", lambda g: None)
    slow = netmod.spectral_clustering(g, n_clusters=3, seed=0)
    assert slow.info["operator"] == "layered"
    np.testing.assert_array_equal(slow.labels, fast.labels)
    assert netmod.ncut(g2, fast.labels) == fast_edited


def test_layers_are_read_from_any_graph_with_layer_and_unit_attributes(weights):
    ref = netmod.from_layers(weights)
    g = ig.Graph(n=ref.vcount(), edges=ref.get_edgelist()[::-1])
    g.es["weight"] = ref.es["weight"][::-1]
    g.vs["layer"] = ref.vs["layer"]
    g.vs["unit"] = ref.vs["unit"]
    for got, want in zip(netmod.layer_weights(g), weights):
        np.testing.assert_array_equal(got, np.abs(want))


@pytest.mark.parametrize("broken", ["no-unit", "layer-gap", "unit-repeated", "directed"])
def test_graph_without_usable_layer_attributes_is_refused(weights, broken):
    g = netmod.from_layers(weights)
    g.es["weight"] = [2 * w for w in g.es["weight"]]  # edited, so the layers are read from the graph
    if broken == "no-unit":
        del g.vs["unit"]
        match = "'layer' and 'unit'"
    elif broken == "layer-gap":
        g.vs["layer"] = [2 * l for l in g.vs["layer"]]
        match = "layers 0, 1"
    elif broken == "unit-repeated":
        g.vs["unit"] = [0] * g.vcount()
        match = "'unit' vertex attribute"
    else:
        g = g.as_directed()
        match = "directed"
    with pytest.raises(ValueError, match=match):
        netmod.shuffle_null(g, n_shuffles=2, n_clusters=3, progress=False)
    with pytest.raises(ValueError, match=match):
        netmod.layer_weights(g)


def test_from_layers_names(weights):
    g = netmod.from_layers(weights, names=["in", "a", "b", "out"])
    assert g["layer_names"] == ["in", "a", "b", "out"]
    assert netmod.from_layers(weights)["layer_names"] == ["input", "layer 1", "layer 2", "layer 3"]
    with pytest.raises(ValueError, match="names must have one entry per layer of units"):
        netmod.from_layers(weights, names=["in"])
