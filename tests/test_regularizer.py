"""The clusterability regulariser: penalty value and gradient, unit balancing, training with it.

References: LAPACK eigh of the dense normalised Laplacian (conftest), central finite differences
in float64, torch autograd through a dense ``torch.linalg.eigh``, scipy's minimiser for the
balancing fixed point.
"""

import copy

import numpy as np
import pytest
import scipy.optimize
import torch
from torch import nn
from torch.nn.utils import prune

import netmod
from netmod import training
from netmod.datasets import load_embedded
from netmod.torch_models import keras_like_mlp

TIGHT = 1e-13


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small nets: one torch thread is fastest, and keeps the module quick on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mlp64(sizes, seed):
    """A keras-like MLP in float64 with random (non-zero) biases."""
    m = keras_like_mlp(sizes, seed=seed).double()
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for lin in linears(m):
            lin.bias.copy_(torch.rand(lin.bias.shape, generator=gen, dtype=torch.float64) - 0.5)
    return m


def linears(m):
    return [x for x in m.modules() if isinstance(x, nn.Linear)]


def layer_mats(m):
    """The (in, out) |W| matrices the graph is built from (numpy)."""
    return [training._effective_weight(lin).detach().double().numpy().T.copy() for lin in linears(m)]


def penalty_grad(m, n_eigenvalues):
    for lin in linears(m):
        for p in lin.parameters():
            p.grad = None
    p = training.clusterability_penalty(m, n_eigenvalues=n_eigenvalues, tol=TIGHT)
    p.backward()
    return float(p.detach()), [lin.weight.grad.clone() for lin in linears(m)]


def dense_penalty(weights, n_eigenvalues):
    """Reference: sum of eigenvalues 2..m+1 of I - D^-1/2 A D^-1/2 by torch.linalg.eigh, with autograd.

    ``weights`` are (out, in) torch tensors; zero-degree nodes dropped first.
    """
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    off = np.concatenate([[0], np.cumsum(sizes)])
    n = int(off[-1])
    A = torch.zeros(n, n, dtype=torch.float64)
    for l, w in enumerate(weights):
        block = torch.zeros(n, n, dtype=torch.float64)
        block[off[l] : off[l + 1], off[l + 1] : off[l + 2]] = w.abs().T
        A = A + block + block.T
    d = A.sum(dim=1)
    kept = torch.nonzero(d > 0).reshape(-1)
    A = A[kept][:, kept]
    s = A.sum(dim=1).rsqrt()
    L = torch.eye(len(kept), dtype=torch.float64) - s[:, None] * A * s[None, :]
    e = torch.linalg.eigh(L).eigenvalues
    return e[1 : n_eigenvalues + 1].sum(), e.detach()


def central_differences(m, n_eigenvalues, h=1e-6):
    out = []
    for lin in linears(m):
        g = torch.zeros_like(lin.weight)
        w = lin.weight.data
        for idx in np.ndindex(*w.shape):
            keep = float(w[idx])
            w[idx] = keep + h
            plus = float(training.clusterability_penalty(m, n_eigenvalues=n_eigenvalues, tol=TIGHT).detach())
            w[idx] = keep - h
            minus = float(training.clusterability_penalty(m, n_eigenvalues=n_eigenvalues, tol=TIGHT).detach())
            w[idx] = keep
            g[idx] = (plus - minus) / (2 * h)
        out.append(g)
    return out


def flat(gs):
    return torch.cat([g.reshape(-1) for g in gs])


def block_diagonal_mlp():
    """A 6-5-4-3 float64 MLP whose graph has 2 components plus one dead input and one dead hidden unit."""
    m = mlp64([6, 5, 4, 3], seed=5)
    masks = [torch.zeros(5, 6), torch.zeros(4, 5), torch.zeros(3, 4)]
    masks[0][:2, :3] = 1
    masks[0][2:4, 3:5] = 1  # input 5 and hidden unit 4 of layer 1 are left without edges
    masks[1][:2, :2] = 1
    masks[1][2:, 2:4] = 1
    masks[2][:1, :2] = 1
    masks[2][1:, 2:] = 1
    with torch.no_grad():
        for lin, mask in zip(linears(m), masks):
            lin.weight.mul_(mask.double())
    return m


# --- the penalty and its gradient ---------------------------------------------------------


@pytest.mark.parametrize("sizes,seed,n_eig", [((6, 5, 4, 3), 3, 3), ((5, 7, 4), 1, 2), ((4, 6, 6, 2), 2, 1)])
def test_gradient_matches_central_finite_differences(sizes, seed, n_eig):
    m = mlp64(sizes, seed)
    _, spectrum = dense_penalty([lin.weight for lin in linears(m)], n_eig)
    assert spectrum[n_eig + 1] - spectrum[n_eig] > 1e-3  # differentiable here: the next eigenvalue is apart
    value, grads = penalty_grad(m, n_eig)
    fd = central_differences(m, n_eig)
    g, f = flat(grads), flat(fd)
    assert float((g - f).norm() / f.norm()) < 1e-6
    assert float((g - f).abs().max()) < 1e-6 * float(f.abs().max())
    assert value == pytest.approx(float(spectrum[1 : n_eig + 1].sum()), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_eig", [1, 3, 5])
def test_gradient_equals_autograd_through_dense_eigh(seed, n_eig):
    m = mlp64((7, 6, 5, 4), seed)
    with torch.no_grad():
        m[0].weight[:, 2] = 0.0  # a dead input: a zero-degree node, dropped by both
    value, grads = penalty_grad(m, n_eig)
    ws = [lin.weight.detach().clone().requires_grad_(True) for lin in linears(m)]
    ref, spectrum = dense_penalty(ws, n_eig)
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-12)
    assert len(spectrum) == 7 + 6 + 5 + 4 - 1
    for g, w in zip(grads, ws):
        assert torch.allclose(g, w.grad, rtol=1e-8, atol=1e-11)
    assert m[0].bias.grad is None  # biases are not graph edges


def test_value_is_the_spectrum_of_the_netmod_graph(normalized_laplacian_eigh, layered_adjacency):
    m = keras_like_mlp((20, 16, 16, 16, 5), seed=4)  # float32, as in training
    p = training.clusterability_penalty(m, n_eigenvalues=3)
    assert p.dtype == torch.float32 and p.requires_grad
    mats = layer_mats(m)
    ref = normalized_laplacian_eigh(layered_adjacency(mats)).eigenvalues
    assert float(p.detach()) == pytest.approx(ref[1:4].sum(), rel=1e-6)
    emb = netmod.spectral_embedding(netmod.from_torch(m), n_components=4, tol=1e-12)
    assert float(p.detach()) == pytest.approx(emb.eigenvalues[1:].sum(), rel=1e-6)


def test_disconnected_graph_zero_eigenvalue_multiplicity(normalized_laplacian_eigh, layered_adjacency):
    m = block_diagonal_mlp()
    ref = normalized_laplacian_eigh(layered_adjacency(layer_mats(m))).eigenvalues
    assert abs(ref[1]) < 1e-12 and ref[2] > 1e-3  # two components: eigenvalue 0 twice
    value, grads = penalty_grad(m, 3)
    assert value == pytest.approx(ref[1:4].sum(), abs=1e-12)
    fd = central_differences(m, 3)
    g, f = flat(grads), flat(fd)
    assert float((g - f).norm() / f.norm()) < 1e-6
    ws = [lin.weight.detach().clone().requires_grad_(True) for lin in linears(m)]
    ref_t, _ = dense_penalty(ws, 3)
    ref_t.backward()
    for a, w in zip(grads, ws):
        assert torch.allclose(a, w.grad, rtol=1e-8, atol=1e-11)
    # Only zero-eigenvalues summed: the penalty and its gradient vanish.
    value1, grads1 = penalty_grad(m, 1)
    assert abs(value1) < 1e-12
    assert float(flat(grads1).abs().max()) < 1e-9


def test_pruned_model_is_read_through_its_masks():
    m = mlp64((8, 6, 4), seed=7)
    plain = copy.deepcopy(m)
    for lin in linears(m):
        prune.l1_unstructured(lin, "weight", amount=0.5)
    with torch.no_grad():
        for a, b in zip(linears(plain), linears(m)):
            a.weight.copy_(b.weight_orig * b.weight_mask)
    p = training.clusterability_penalty(m, n_eigenvalues=2, tol=TIGHT)
    p.backward()
    q, grads = penalty_grad(plain, 2)
    assert float(p.detach()) == pytest.approx(q, rel=1e-12)
    for lin, g in zip(linears(m), grads):
        # d|w|/dw = 0 at the pruned zeros, and the mask zeroes weight_orig's gradient there too.
        assert torch.allclose(lin.weight_orig.grad, g * lin.weight_mask, rtol=1e-10, atol=1e-14)
        assert bool((lin.weight_orig.grad[lin.weight_mask == 0] == 0).all())


class _Registered(nn.Module):
    """An MLP whose forward runs its Linear layers in another order than they were registered."""

    def __init__(self, skip=False):
        super().__init__()
        torch.manual_seed(0)
        self.b, self.a, self.c = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.skip = skip

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.c(h) if self.skip else self.c(torch.relu(self.b(h)))


def test_layers_are_taken_in_the_order_the_forward_runs_them():
    m = _Registered()
    p = training.clusterability_penalty(m, n_eigenvalues=2)
    ref = netmod.spectral_embedding(netmod.from_torch(m), n_components=3, tol=1e-12).eigenvalues[1:].sum()
    assert float(p.detach()) == pytest.approx(ref, rel=1e-6)
    swapped = netmod.spectral_embedding(netmod.from_layers(
        [lin.weight.detach().double().numpy().T for lin in (m.b, m.a, m.c)]), n_components=3).eigenvalues[1:].sum()
    assert abs(swapped - ref) > 1e-3  # the registration order would have given another graph
    with pytest.raises(ValueError, match="Linear 'b' never runs"):
        training.clusterability_penalty(_Registered(skip=True))


def test_penalty_errors():
    m = keras_like_mlp((5, 4, 3))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        training.clusterability_penalty([np.ones((3, 2))])
    with pytest.raises(ValueError, match="n_eigenvalues must be >= 1, got 0"):
        training.clusterability_penalty(m, n_eigenvalues=0)
    with pytest.raises(TypeError, match="n_eigenvalues must be an integer"):
        training.clusterability_penalty(m, n_eigenvalues=2.0)
    with pytest.raises(ValueError, match=r"n_eigenvalues must be <= .*\(11\), got 12"):
        training.clusterability_penalty(m, n_eigenvalues=12)
    with pytest.raises(ValueError, match="tol must be > 0"):
        training.clusterability_penalty(m, tol=0.0)
    with pytest.raises(ValueError, match="must contain nn.Linear"):
        training.clusterability_penalty(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="only parametrised layers are nn.Linear, got Conv2d"):
        training.clusterability_penalty(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)))
    with pytest.raises(ValueError, match="must form a chain: layer 1 has 5 inputs but layer 0 has 4 outputs"):
        training.clusterability_penalty(nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)))
    bad = copy.deepcopy(m)
    with torch.no_grad():
        bad[2].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="layer 1 weights must be finite"):
        training.clusterability_penalty(bad)


# --- balancing the hidden units ---------------------------------------------------------


def unit_sums(m):
    """(incoming, outgoing) |w| sums of every hidden layer's units."""
    ls = linears(m)
    return [(training._effective_weight(a).abs().sum(dim=1).detach(), training._effective_weight(b).abs().sum(dim=0)
             .detach()) for a, b in zip(ls[:-1], ls[1:])]


def total_l1(m):
    with torch.no_grad():
        return float(sum(training._effective_weight(lin).abs().sum() for lin in linears(m)))


def test_balancing_preserves_the_function_and_balances():
    m = mlp64((9, 7, 6, 5, 3), seed=11)
    x = torch.rand(50, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    before = m(x).detach()
    totals = [total_l1(m)]
    for sweep in range(40):
        imbalance = training.balance_hidden_units(m, n_sweeps=1)
        totals.append(total_l1(m))
        if sweep == 0:
            # The sweep runs in layer order: the last hidden layer is exactly balanced after it.
            s_in, s_out = unit_sums(m)[-1]
            assert torch.allclose(s_in, s_out, rtol=1e-12)
            assert imbalance > 1e-3  # the earlier layers are not yet
    assert all(b <= a * (1 + 1e-13) for a, b in zip(totals, totals[1:]))  # each step minimises total |w|
    assert training.balance_hidden_units(m, n_sweeps=300) < 1e-10
    for s_in, s_out in unit_sums(m):
        assert torch.allclose(s_in, s_out, rtol=1e-9)
    assert torch.allclose(m(x), before, rtol=1e-12, atol=1e-13)
    # Independent reference: the rescaling of least total |w| over log-scales, by scipy.
    ref = mlp64((9, 7, 6, 5, 3), seed=11)
    mats = [lin.weight.detach().abs().numpy() for lin in linears(ref)]  # (out, in)
    sizes = [w.shape[0] for w in mats[:-1]]

    def f(x):
        xs = np.split(x, np.cumsum(sizes)[:-1])
        pad = [np.zeros(mats[0].shape[1])] + list(xs) + [np.zeros(mats[-1].shape[0])]
        return sum((w * np.exp(pad[l + 1][:, None] - pad[l][None, :])).sum() for l, w in enumerate(mats))

    best = scipy.optimize.minimize(f, np.zeros(sum(sizes)), method="BFGS", options={"gtol": 1e-10})
    assert total_l1(m) == pytest.approx(best.fun, rel=1e-9)


def test_balancing_composes_with_pruning_and_leaves_dead_units():
    m = mlp64((8, 6, 5, 3), seed=2)
    with torch.no_grad():
        m[0].weight[1, :] = 0.0  # hidden unit 1 of layer 1: no incoming weights
    for lin in linears(m):
        prune.l1_unstructured(lin, "weight", amount=0.6)
    masks = [lin.weight_mask.clone() for lin in linears(m)]
    x = torch.rand(20, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    before = m(x).detach()
    dead_bias = m[0].bias[1].item()
    assert training.balance_hidden_units(m, n_sweeps=300) < 1e-9
    for lin, mask in zip(linears(m), masks):
        assert torch.equal(lin.weight_mask, mask)
        assert torch.equal(lin.weight, lin.weight_orig * lin.weight_mask)
    assert m[0].bias[1].item() == dead_bias  # a unit without inputs is not rescaled (c = 1)
    for s_in, s_out in unit_sums(m):
        live = (s_in > 0) & (s_out > 0)
        assert torch.allclose(s_in[live], s_out[live], rtol=1e-8)
    assert torch.allclose(m(x), before, rtol=1e-12, atol=1e-13)


def test_balancing_errors():
    with pytest.raises(ValueError, match="positively homogeneous.*got Tanh"):
        training.balance_hidden_units(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="a ReLU between consecutive Linear layers"):
        training.balance_hidden_units(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="no layer after its Linear layers, got ReLU"):
        training.balance_hidden_units(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU()))
    with pytest.raises(ValueError, match="nn.Sequential"):
        training.balance_hidden_units(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="n_sweeps must be >= 1, got 0"):
        training.balance_hidden_units(keras_like_mlp((3, 4, 2)), n_sweeps=0)


# --- training with the regulariser ------------------------------------------------------


@pytest.fixture(scope="module")
def small7x7():
    """1500 embedded MNIST training images, 4x4-mean-pooled to 7x7, and 1000 test images."""
    tr, te = load_embedded("train"), load_embedded("test")

    def pool(images):
        return images.reshape(-1, 7, 4, 7, 4).astype(np.float64).mean(axis=(2, 4))

    return (pool(tr.images[:1500]), tr.labels[:1500]), (pool(te.images[:1000]), te.labels[:1000])


def test_training_with_the_regulariser_lowers_the_penalty(small7x7):
    train, test = small7x7
    kw = dict(sizes=(49, 24, 24, 10), epochs=30, seed=0, test=test, progress=False)
    control, rc = training.train_mlp(train, **kw)
    reg, rr = training.train_mlp(train, clusterability=0.1, **kw)
    pc = float(training.clusterability_penalty(control).detach())
    pr = float(training.clusterability_penalty(reg).detach())
    assert pr < 0.9 * pc  # measured: 1.76 against 2.14
    assert rr.test_accuracy > 0.75 and rc.test_accuracy > 0.75
    assert training.balance_hidden_units(copy.deepcopy(reg)) < 0.05  # kept near balance by the per-step sweep
    # Pruning with it keeps lowering it against the pruned control, and keeps the 90% masks.
    pc2, prc = training.prune_mlp(copy.deepcopy(control), train, epochs=2, seed=0, progress=False)
    pr2, prr = training.prune_mlp(copy.deepcopy(reg), train, epochs=2, seed=0, clusterability=0.1, progress=False)
    assert all(s == pytest.approx(0.9, abs=0.005) for s in prr.sparsity)
    assert float(training.clusterability_penalty(pr2).detach()) < float(training.clusterability_penalty(pc2).detach())


def test_default_training_is_unchanged_and_bad_settings_fail(small7x7):
    train, _ = small7x7
    small = (train[0][:300], train[1][:300])
    a, _ = training.train_mlp(small, sizes=(49, 8, 10), epochs=1, progress=False)
    b, _ = training.train_mlp(small, sizes=(49, 8, 10), epochs=1, progress=False, clusterability=0.0,
                              clusterability_eigenvalues=5)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
    c, _ = training.train_mlp(small, sizes=(49, 8, 10), epochs=1, progress=False, clusterability=0.1)
    assert not torch.equal(a[0].weight, c[0].weight)
    with pytest.raises(ValueError, match="clusterability must be >= 0, got -0.1"):
        training.train_mlp(small, sizes=(49, 8, 10), epochs=1, clusterability=-0.1)
    with pytest.raises(ValueError, match="clusterability_eigenvalues must be >= 1, got 0"):
        training.train_mlp(small, sizes=(49, 8, 10), epochs=1, clusterability=0.1, clusterability_eigenvalues=0)
    with pytest.raises(TypeError, match="clusterability must be a number"):
        training.prune_mlp(a, small, epochs=1, clusterability="0.1")
    tanh = nn.Sequential(nn.Linear(49, 8), nn.Tanh(), nn.Linear(8, 10))
    with pytest.raises(ValueError, match="positively homogeneous"):
        training.prune_mlp(tanh, small, epochs=1, clusterability=0.1)
