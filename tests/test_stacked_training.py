"""Several seeds trained at once (training.train_mlps / prune_mlps) against one-at-a-time references.

Without dropout, a stacked seed follows the same steps as :func:`train_mlp` with that seed (same
initialisation, batch order, loss and Adam), so the networks agree up to the rounding of batched
against plain matrix products. With dropout, each seed's masks are its own: a seed's network does not
depend on the other seeds of the stack, and the masks keep units with probability 1 - p.
"""

import copy

import numpy as np
import pytest
from torch import nn

from netmod import training
from netmod.datasets import load_embedded

SIZES = (784, 32, 32, 10)


@pytest.fixture(scope="module")
def data():
    tr, te = load_embedded("train"), load_embedded("test")
    return (tr.images[:1024], tr.labels[:1024]), (te.images[:1000], te.labels[:1000])


def _close(a: nn.Module, b: nn.Module, tol: float) -> float:
    pairs = [(x, y) for la, lb in zip(training._linears(a), training._linears(b))
             for x, y in ((la.weight, lb.weight), (la.bias, lb.bias))]
    worst = max(float((x - y).detach().abs().max()) for x, y in pairs)
    assert worst < tol, worst
    return worst


def test_stacked_training_follows_each_seeds_own_run(data):
    nets = training.train_mlps(data[0], seeds=[3, 5], sizes=SIZES, epochs=2, test=data[1], l1=1e-4,
                               progress=False)
    for seed, (model, result) in zip([3, 5], nets):
        ref, ref_result = training.train_mlp(data[0], sizes=SIZES, epochs=2, seed=seed, test=data[1], l1=1e-4,
                                             progress=False)
        _close(model, ref, 1e-4)
        assert np.allclose(result.losses, ref_result.losses, rtol=1e-5)
        assert abs(result.test_accuracy - ref_result.test_accuracy) <= 0.005


def test_clusterable_init_and_l2_stacked(data):
    (model, _), = training.train_mlps(data[0], seeds=[2], sizes=SIZES, epochs=1, init="clusterable", l2=1e-3,
                                      progress=False)
    ref, _ = training.train_mlp(data[0], sizes=SIZES, epochs=1, seed=2, init="clusterable", l2=1e-3,
                                progress=False)
    _close(model, ref, 1e-4)


def test_stacked_pruning_follows_prune_mlp(data):
    base = [training.train_mlp(data[0], sizes=SIZES, epochs=1, seed=s, progress=False)[0] for s in (0, 1)]
    pruned = training.prune_mlps([copy.deepcopy(m) for m in base], data[0], seeds=[0, 1], epochs=2,
                                 test=data[1], progress=False)
    for seed, m, (model, result) in zip((0, 1), base, pruned):
        ref, ref_result = training.prune_mlp(copy.deepcopy(m), data[0], epochs=2, seed=seed, progress=False)
        for a, b in zip(training._linears(model), training._linears(ref)):
            n = a.weight.numel()
            assert int((a.weight == 0).sum()) == round(0.9 * n)
            same_mask = float(((a.weight == 0) == (b.weight == 0)).float().mean())
            assert same_mask > 0.999, same_mask
        _close(model, ref, 1e-3)
        assert result.sparsity == pytest.approx(ref_result.sparsity, abs=1e-6)


def test_a_seed_does_not_depend_on_its_stack(data):
    a = training.train_mlps(data[0], seeds=[0, 1], sizes=SIZES, dropout=0.5, epochs=1, progress=False)
    b = training.train_mlps(data[0], seeds=[0, 2], sizes=SIZES, dropout=0.5, epochs=1, progress=False)
    _close(a[0][0], b[0][0], 1e-5)
    with pytest.raises(AssertionError):
        _close(a[1][0], b[1][0], 1e-3)


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_dropout_masks_keep_units_with_probability_one_minus_p(p):
    stack = training._Stack([training.initial_mlp((4, 3, 2), seed=s, dropout=p) for s in (0, 1)], p, [0, 1], 9)
    mask = stack._dropout_mask((2, 500, 400)).numpy()
    assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - p))}
    kept = (mask > 0).mean(axis=(1, 2))
    # 200000 Bernoulli(1 - p) draws per seed: 5 standard errors.
    assert np.all(np.abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / 200000))
    assert not np.array_equal(mask[0], mask[1])


def test_bad_inputs_are_refused(data):
    with pytest.raises(ValueError, match="distinct"):
        training.train_mlps(data[0], seeds=[1, 1], sizes=SIZES, epochs=1, progress=False)
    with pytest.raises(ValueError, match="init"):
        training.train_mlps(data[0], seeds=[1], sizes=SIZES, epochs=1, init="orthogonal", progress=False)
    nets = [training.initial_mlp(SIZES, seed=0), training.initial_mlp((784, 16, 10), seed=1)]
    with pytest.raises(ValueError, match="one shape"):
        training.prune_mlps(nets, data[0], seeds=[0, 1], epochs=1, progress=False)
    with pytest.raises(ValueError, match="one seed per model"):
        training.prune_mlps(nets[:1], data[0], seeds=[0, 1], epochs=1, progress=False)
