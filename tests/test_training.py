"""Training and pruning on a small slice of the embedded MNIST split."""

import numpy as np
import pytest
import torch

import netmod
from netmod import training
from netmod.datasets import load_embedded

SIZES = (784, 64, 64, 10)


@pytest.fixture(scope="module")
def data():
    tr, te = load_embedded("train"), load_embedded("test")
    return (tr.images[:3000], tr.labels[:3000]), (te.images, te.labels)


@pytest.fixture(scope="module")
def trained(data):
    return training.train_mlp(data[0], sizes=SIZES, epochs=4, seed=0, test=data[1], progress=False)


def test_training_learns_and_is_deterministic(data, trained):
    model, result = trained
    assert result.test_accuracy > 0.85
    assert result.losses[-1] < result.losses[0]
    again, _ = training.train_mlp(data[0], sizes=SIZES, epochs=4, seed=0, progress=False)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    other, _ = training.train_mlp(data[0], sizes=SIZES, epochs=1, seed=1, progress=False)
    assert not torch.equal(other[0].weight, model[0].weight)


def test_global_rng_left_alone(data):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    training.train_mlp((data[0][0][:256], data[0][1][:256]), sizes=(784, 8, 10), epochs=1, dropout=0.5, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_pruning_reaches_90_percent_per_layer_and_save_load_round_trips(data, trained, tmp_path):
    import copy

    model = copy.deepcopy(trained[0])
    pruned, result = training.prune_mlp(model, data[0], epochs=2, seed=0, test=data[1], progress=False)
    for s, m in zip(result.sparsity, [m for m in pruned if isinstance(m, torch.nn.Linear)]):
        assert s == pytest.approx(0.9, abs=0.005)
        assert float((m.weight == 0).float().mean()) == s
        assert int((m.bias == 0).sum()) < m.bias.numel()  # biases untouched
    assert result.test_accuracy > 0.6  # 90% of a 64-unit net pruned in 48 steps
    training.save_model(pruned, tmp_path / "m.pt", seed=0, accuracy=result.test_accuracy)
    loaded, meta = training.load_model(tmp_path / "m.pt")
    assert meta["sizes"] == list(SIZES) and meta["accuracy"] == result.test_accuracy
    assert training.evaluate(loaded, *data[1]) == result.test_accuracy
    g = netmod.from_torch(loaded)
    assert g.ecount() == sum(int((m.weight != 0).sum()) for m in loaded if isinstance(m, torch.nn.Linear))


def test_polynomial_schedule_is_cubic():
    t = np.arange(0, 101)
    got = np.array([training.polynomial_sparsity(int(s), 100) for s in t])
    np.testing.assert_allclose(got, 0.9 + (0.5 - 0.9) * (1 - t / 100) ** 3)
    assert (np.diff(got) >= 0).all()


def test_regularization_terms_do_not_leak():
    m = netmod.torch_models.keras_like_mlp([5, 4, 3], seed=0)
    w = [m[0].weight, m[2].weight]
    l2_only = training.regularization(m, l2=1e-2)
    assert float(l2_only) == pytest.approx(1e-2 * float(sum((x**2).sum() for x in w)), rel=1e-6)
    l1_only = training.regularization(m, l1=1e-2)
    assert float(l1_only) == pytest.approx(1e-2 * float(sum(x.abs().sum() for x in w)), rel=1e-6)
    assert float(training.regularization(m)) == 0.0


def test_adam_epsilon_is_keras_default():
    assert training.ADAM_EPS == 1e-7


@pytest.mark.parametrize("seed", range(6))
def test_smallest_mask_equals_a_stable_argsort(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    # Few distinct values (many ties, zeros among them) or continuous values.
    values = rng.integers(0, 5, n).astype(np.float32) if seed % 2 else np.abs(rng.normal(size=n)).astype(np.float32)
    for k in {0, 1, n // 3, n // 2, n - 1, n}:
        ref = np.ones(n, dtype=np.float32)
        ref[np.argsort(values, kind="stable")[:k]] = 0.0
        got = training.smallest_mask(torch.from_numpy(values), k).numpy()
        assert np.array_equal(got, ref), (n, k)


def test_save_model_writes_live_pruning_as_the_weights_it_gives(tmp_path):
    from torch.nn.utils import prune

    model = netmod.torch_models.keras_like_mlp((784, 20, 10), seed=3)
    first = model[0]
    prune.l1_unstructured(first, "weight", amount=0.7)
    with torch.no_grad():
        first.weight_orig.add_(0.5)  # changed after the hook last ran: the saved weight must still be orig * mask
    training.save_model(model, tmp_path / "m.pt")
    loaded, _ = training.load_model(tmp_path / "m.pt")
    expected = (first.weight_orig * first.weight_mask).detach()
    assert torch.equal(loaded[0].weight, expected) and int((loaded[0].weight == 0).sum()) == 784 * 20 * 7 // 10
    assert torch.equal(loaded[2].weight, model[2].weight)
    assert prune.is_pruned(model)  # the model itself is left as it was
