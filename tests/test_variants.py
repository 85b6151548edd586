"""The training variants of the 2021 table (REFERENCE.md 5, 6b) against independent computations:
the halves tasks, the clusterable-initialisation factors, the L1 / L2 terms of the stacked trainer,
and the published numbers they are compared with."""

import numpy as np
import pytest
import torch

from netmod import datasets, paper, synthetic, training


def _marked_images(n):
    """Images whose every column pair carries the image's index (so the source of a half can be read back),
    with odd pixel sums in some pairs to exercise rounding half to even."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    x[:, 0, 0] = np.arange(n)  # marker: column 0 and 1 of row 0 hold the index
    x[:, 0, 1] = np.arange(n)
    return x


def _squeeze_loop(img):
    out = np.zeros((28, 14), dtype=np.uint8)
    for r in range(28):
        for j in range(14):
            out[r, j] = round((int(img[r, 2 * j]) + int(img[r, 2 * j + 1])) / 2)  # Python rounds half to even
    return out


def test_halves_diff_squeezes_and_labels_against_a_loop():
    n = 60
    x, y = _marked_images(n), np.arange(n) % 10
    hx, hy = datasets.halves(x, y, kind="diff", seed=4)
    assert hx.shape == (n, 28, 28) and hx.dtype == np.uint8 and hy.dtype == np.int64
    for i in range(n):
        a, b = int(hx[i, 0, 0]), int(hx[i, 0, 14])  # the markers of the left and right halves
        assert a == i
        assert np.array_equal(hx[i, :, :14], _squeeze_loop(x[a]))
        assert np.array_equal(hx[i, :, 14:], _squeeze_loop(x[b]))
        assert hy[i] == (y[a] + y[b]) % 10
    partners = sorted(int(hx[i, 0, 14]) for i in range(n))
    assert partners == list(range(n))  # a permutation: every image is a right half once


def test_halves_same_pairs_within_a_class():
    n = 80
    x, y = _marked_images(n), np.random.default_rng(2).integers(0, 10, n)
    hx, hy = datasets.halves(x, y, kind="same", seed=0)
    for i in range(n):
        b = int(hx[i, 0, 14])
        assert y[b] == y[i] == hy[i]
        assert np.array_equal(hx[i, :, 14:], _squeeze_loop(x[b]))
    again = datasets.halves(x, y, kind="same", seed=0)
    other = datasets.halves(x, y, kind="same", seed=1)
    assert np.array_equal(again[0], hx) and not np.array_equal(other[0], hx)
    assert not np.array_equal(datasets.halves(x, y, kind="diff", seed=1)[0], datasets.halves(x, y, kind="diff")[0])


def test_halves_refuses_bad_input():
    x, y = _marked_images(10), np.arange(10)
    with pytest.raises(ValueError, match="kind"):
        datasets.halves(x, y, kind="mixed")
    with pytest.raises(ValueError, match="28, 28"):
        datasets.halves(x[:, :, :20], y, kind="diff")
    with pytest.raises(ValueError, match="0..9"):
        datasets.halves(x, y + 5, kind="diff")
    with pytest.raises(ValueError, match="one per image"):
        datasets.halves(x, y[:9], kind="same")
    with pytest.raises(ValueError, match="0..255"):
        datasets.halves(x.astype(int) * 2, y, kind="same")


def test_halves_of_mnist_have_uniform_sum_labels(standard_data):
    ds = datasets.load("mnist", "test", data_dir=standard_data, download=False)
    _, hy = datasets.halves(ds.images, ds.labels, kind="diff", seed=1)
    share = np.bincount(hy, minlength=10) / len(hy)
    assert np.all((share > 0.08) & (share < 0.12)), share


def test_clusterable_factors_against_an_independent_draw():
    sizes, seed, n_modules = [7, 9, 8, 5], 3, 4
    f = synthetic.clusterable_factors(sizes, n_modules=n_modules, seed=seed)
    rng = np.random.default_rng([seed, 1])
    modules = [rng.integers(0, n_modules, size=s) for s in sizes[1:]]
    assert np.all(f[0] == 1.0) and f[0].shape == (7, 9)
    for layer in (1, 2):
        src, dst = modules[layer - 1], modules[layer]
        for i in range(sizes[layer]):
            for j in range(sizes[layer + 1]):
                assert f[layer][i, j] == (4.6 if src[i] == dst[j] else 0.6)
    w = synthetic.clusterable_weights(sizes, n_modules=n_modules, seed=seed)
    g = synthetic.glorot_weights(sizes, seed=seed)
    assert all(np.array_equal(a, b * c) for a, b, c in zip(w, g, f))


def test_clusterable_factors_plant_one_module_in_ten():
    f = synthetic.clusterable_factors([784, 256, 256, 10], seed=0)
    within = float((f[1] == 4.6).mean())
    assert abs(within - 0.1) < 0.01  # 65536 pairs, P(same module) = 1/10
    assert set(np.unique(f[2])) <= {0.6, 4.6}


def test_clusterable_init_multiplies_the_keras_weights():
    sizes = (784, 64, 32, 10)
    plain = training.initial_mlp(sizes, seed=5)
    planted = training.initial_mlp(sizes, seed=5, init="clusterable")
    f = synthetic.clusterable_factors(list(sizes), seed=5)
    for a, b, fac in zip(training._linears(plain), training._linears(planted), f):
        expected = a.weight.detach().double() * torch.from_numpy(fac.T)
        assert torch.allclose(b.weight.detach().double(), expected, rtol=1e-7, atol=0)
        assert torch.count_nonzero(b.bias) == 0


@pytest.mark.parametrize("l1,l2", [(5e-5, 0.0), (0.0, 5e-5), (1e-3, 2e-3)])
def test_stacked_regularization_is_each_seeds_own(l1, l2):
    models = [training.initial_mlp((12, 6, 4, 3), seed=s) for s in (0, 1, 2)]
    stack = training._Stack(models, 0.0, [0, 1, 2], 4)
    per_seed = stack.regularization(stack.weights, l1, l2).detach().numpy()
    for j, m in enumerate(models):
        w = [lin.weight.detach().double().numpy() for lin in training._linears(m)]
        expected = sum(l1 * np.abs(x).sum() + l2 * (x**2).sum() for x in w)  # biases excluded
        assert per_seed[j] == pytest.approx(expected, rel=1e-6)
        assert per_seed[j] == pytest.approx(float(training.regularization(m, l1=l1, l2=l2).detach()), rel=1e-6)


def test_the_6b_numbers_are_all_there():
    keys = {(d, v, p) for d, v in [("mnist", "l1"), ("mnist", "l2"), ("mnist", "clusterable-init"),
                                   ("fashion-mnist", "clusterable-init"), ("mnist", "halves-diff"),
                                   ("mnist", "halves-same")] for p in (False, True)}
    assert set(paper.PAPER_2021_VARIANTS) == keys
    assert paper.PAPER_2021_VARIANTS[("mnist", "l2", True)]["sd"] == 1.88
    assert paper.PAPER_2021_VARIANTS[("mnist", "clusterable-init", True)]["mean_z"] == -92
    assert paper.PAPER_2021_VARIANTS[("mnist", "halves-same", False)]["significant"] == 2
    assert set(paper.VARIANTS) >= {v for _, v, _ in keys}
