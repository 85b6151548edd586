"""netmod.synthetic: Glorot init, the clusterable init of REFERENCE.md 5, magnitude pruning."""

import numpy as np
import pytest
import scipy.sparse
import scipy.stats
from scipy.sparse.csgraph import connected_components

from netmod.synthetic import clusterable_weights, glorot_weights, prune_by_magnitude

MLP_SIZES = [784, 256, 256, 256, 256, 10]
SMALL_SIZES = [60, 40, 40, 10]


def layer_shapes(sizes):
    return list(zip(sizes[:-1], sizes[1:]))


def test_glorot_shapes_bounds_and_moments():
    weights = glorot_weights(MLP_SIZES, seed=0)
    assert len(weights) == len(MLP_SIZES) - 1
    for w, (n_in, n_out) in zip(weights, layer_shapes(MLP_SIZES)):
        assert isinstance(w, np.ndarray)
        assert w.dtype == np.float64
        assert w.shape == (n_in, n_out)
        bound = np.sqrt(6.0 / (n_in + n_out))
        n = w.size
        assert np.abs(w).max() <= bound
        # The extremes of n uniform draws sit about 2 * bound / n inside the bound.
        assert w.max() > bound * (1 - 20 / n)
        assert w.min() < -bound * (1 - 20 / n)
        # U(-b, b): mean 0, variance b^2 / 3 = 2 / (in + out); five standard errors.
        assert abs(w.mean()) < 5 * bound / np.sqrt(3 * n)
        assert w.var() == pytest.approx(2.0 / (n_in + n_out), rel=5 * 0.9 / np.sqrt(n))
        law = scipy.stats.uniform(-bound, 2 * bound)
        assert scipy.stats.kstest(w.ravel(), law.cdf).pvalue > 1e-4


def test_glorot_is_deterministic_per_seed():
    first = glorot_weights(SMALL_SIZES, seed=3)
    again = glorot_weights(SMALL_SIZES, seed=3)
    other = glorot_weights(SMALL_SIZES, seed=4)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    # Layers of the same shape are independent draws, not one draw reused.
    same_shape = glorot_weights([30, 30, 30, 30], seed=0)
    assert not np.array_equal(same_shape[0], same_shape[1])
    assert not np.array_equal(same_shape[1], same_shape[2])


def planted_structure(weights, base, within, across):
    """Check the clusterable-init structure; return the module components of units.

    Every entry of a later layer must be the Glorot entry times ``within`` or
    ``across``. The "within" pairs must be exactly the pairs of units in the
    same connected component of the graph of within pairs (over all
    non-input layers): that holds iff some module assignment gives w_ij x within
    exactly when module(i) == module(j).
    """
    within_masks = []
    for w, b in zip(weights[1:], base[1:]):
        is_within = np.isclose(w, b * within, rtol=1e-12, atol=0)
        is_across = np.isclose(w, b * across, rtol=1e-12, atol=0)
        assert np.all(is_within ^ is_across)
        within_masks.append(is_within)
    sizes = [w.shape[1] for w in weights]  # non-input layers
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rows, cols = [], []
    for l, mask in enumerate(within_masks):
        i, j = np.nonzero(mask)
        rows.append(offsets[l] + i)
        cols.append(offsets[l + 1] + j)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    n = int(offsets[-1])
    graph = scipy.sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    for l, mask in enumerate(within_masks):
        a = component[offsets[l]:offsets[l + 1]]
        b = component[offsets[l + 1]:offsets[l + 2]]
        np.testing.assert_array_equal(mask, a[:, None] == b[None, :])
    return component


def test_clusterable_init_plants_modules_in_the_standard_mlp():
    weights = clusterable_weights(MLP_SIZES, n_modules=10, within=4.6, across=0.6, seed=0)
    base = glorot_weights(MLP_SIZES, seed=0)
    assert [w.shape for w in weights] == layer_shapes(MLP_SIZES)
    assert all(w.dtype == np.float64 for w in weights)
    np.testing.assert_array_equal(weights[0], base[0])
    component = planted_structure(weights, base, 4.6, 0.6)
    # With 256 units per hidden layer every one of the 10 modules is present in
    # every hidden layer, so the within pairs link all units into exactly 10 modules.
    sizes = np.bincount(component)
    assert sizes.size == 10
    assert sizes.min() > 50
    # About 1/10 of the pairs of a hidden layer lie within a module.
    for w, b in zip(weights[1:4], base[1:4]):
        fraction = np.isclose(w, b * 4.6, rtol=1e-12, atol=0).mean()
        assert 0.09 < fraction < 0.13


def test_clusterable_init_uses_its_parameters():
    weights = clusterable_weights(SMALL_SIZES, n_modules=3, within=2.0, across=0.5, seed=4)
    base = glorot_weights(SMALL_SIZES, seed=4)
    np.testing.assert_array_equal(weights[0], base[0])
    component = planted_structure(weights, base, 2.0, 0.5)
    assert np.unique(component).size == 3


def test_clusterable_init_is_deterministic_per_seed():
    first = clusterable_weights(SMALL_SIZES, seed=1)
    again = clusterable_weights(SMALL_SIZES, seed=1)
    other = clusterable_weights(SMALL_SIZES, seed=2)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    # Defaults are the paper's: 10 modules, x4.6 within, x0.6 across.
    planted_structure(first, glorot_weights(SMALL_SIZES, seed=1), 4.6, 0.6)


def test_clusterable_init_of_a_single_layer_is_glorot():
    for a, b in zip(clusterable_weights([30, 20], seed=3), glorot_weights([30, 20], seed=3)):
        np.testing.assert_array_equal(a, b)


def prune_reference(w, sparsity):
    """Zero the round(sparsity * size) smallest |w|, lower flat index first among ties."""
    n_zero = round(sparsity * w.size)
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    out = np.array(w, dtype=np.float64).ravel()
    out[order[:n_zero]] = 0.0
    return out.reshape(w.shape)


def test_prune_by_magnitude_keeps_the_largest_magnitudes_and_signs():
    weights = glorot_weights(SMALL_SIZES, seed=5)
    original = [w.copy() for w in weights]
    pruned = prune_by_magnitude(weights, 0.9)
    assert len(pruned) == len(weights)
    for p, w, o in zip(pruned, weights, original):
        np.testing.assert_array_equal(w, o)  # input left alone
        assert p.dtype == np.float64
        assert p.shape == w.shape
        assert np.count_nonzero(p == 0) == round(0.9 * w.size)
        kept = p != 0
        np.testing.assert_array_equal(p[kept], w[kept])
        assert np.abs(w[kept]).min() >= np.abs(w[~kept]).max()
        np.testing.assert_array_equal(p, prune_reference(w, 0.9))


def test_prune_by_magnitude_ties_prune_lower_flat_index_first():
    w = np.array([[1.0, -1.0, 2.0], [1.0, 3.0, -1.0]])
    pruned = prune_by_magnitude([w], 0.5)
    np.testing.assert_array_equal(pruned[0], [[0.0, 0.0, 2.0], [0.0, 3.0, -1.0]])
    np.testing.assert_array_equal(pruned[0], prune_reference(w, 0.5))


@pytest.mark.parametrize("sparsity, n_zero", [(0.66, 7), (0.63, 6), (0.0, 0), (1.0, 10)])
def test_prune_by_magnitude_rounds_the_count(sparsity, n_zero):
    w = np.array([[4.0, -9.0, 1.0, 7.0, -2.0], [10.0, -3.0, 8.0, 5.0, -6.0]])
    pruned = prune_by_magnitude([w], sparsity)[0]
    assert np.count_nonzero(pruned == 0) == n_zero
    np.testing.assert_array_equal(pruned, prune_reference(w, sparsity))


def test_prune_by_magnitude_per_layer_on_the_clusterable_mlp():
    weights = clusterable_weights(MLP_SIZES, seed=0)
    pruned = prune_by_magnitude(weights, 0.9)
    for p, w in zip(pruned, weights):
        np.testing.assert_array_equal(p, prune_reference(w, 0.9))
