"""Training, pruning and saving MLPs as in the modularity papers (REFERENCE.md 5).

Keras defaults are matched where PyTorch differs: Glorot-uniform weights and
zero biases (:func:`netmod.torch_models.keras_like_mlp`), Adam epsilon 1e-7.
Pruning follows TensorFlow Model Optimization's magnitude pruning: per-layer
sparsity on a polynomial schedule, the mask recomputed every ``frequency``
steps from the current magnitudes, done with ``torch.nn.utils.prune``.

The clusterability regulariser (REFERENCE.md 8, 2021) adds
``(lambda / m) * clusterability_penalty(model, n_eigenvalues=m)`` to the loss:
the sum of eigenvalues 2..m+1 of the normalised Laplacian of the |W| neuron
graph, from netmod's native eigensolver, differentiated by the eigenvalue
derivative. With it, the hidden units are L1-balanced
(:func:`balance_hidden_units`) after every optimiser step, so that the
function-preserving ReLU rescalings, which move the spectrum, cannot be used
to lower the penalty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from ._validate import check_int, check_real, check_seed, check_tol
from .torch_models import keras_like_mlp

__all__ = [
    "TrainResult",
    "balance_hidden_units",
    "clusterability_penalty",
    "INITS",
    "evaluate",
    "initial_mlp",
    "load_model",
    "polynomial_sparsity",
    "prune_mlp",
    "prune_mlps",
    "regularization",
    "save_model",
    "smallest_mask",
    "train_mlp",
    "train_mlps",
]

ADAM_EPS = 1e-7  # Keras' default; PyTorch's is 1e-8


def _offset(seed: int, k: int) -> int:
    """The seed of stream ``k`` of a run seeded with ``seed`` (wraps at 2**64, torch's limit)."""
    return (seed + k) % 2**64


@dataclass
class TrainResult:
    """What a training or pruning run did."""

    losses: list = field(default_factory=list)
    test_accuracy: float | None = None
    sparsity: list = field(default_factory=list)


def _tensors(images: np.ndarray, labels: np.ndarray) -> tuple:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    return x, y


def _linears(model: nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def regularization(model: nn.Module, *, l1: float = 0.0, l2: float = 0.0) -> torch.Tensor:
    """l1 * sum|W| + l2 * sum W^2 over every Linear weight (biases excluded).

    Each coefficient applies only to its own term (the 2021 code leaked L1
    into the first layer of L2 runs; this does not).

    Examples
    --------
    >>> m = keras_like_mlp([3, 2])
    >>> float(regularization(m, l2=0.5)) == 0.5 * float((m[0].weight ** 2).sum())
    True
    """
    total = torch.zeros(())
    for m in _linears(model):
        if l1:
            total = total + l1 * m.weight.abs().sum()
        if l2:
            total = total + l2 * (m.weight**2).sum()
    return total


# --- the clusterability regulariser (REFERENCE.md 8) ------------------------------------

PENALTY_TOL = 1e-10
"""Default eigensolver tolerance of :func:`clusterability_penalty` (residual norm of each eigenvector;
the eigenvalue error is about its square, the gradient error about it over the spectral gap)."""


def _effective_weight(m: nn.Linear) -> torch.Tensor:
    """The weight a Linear layer computes with: ``weight_orig * weight_mask`` under live
    ``torch.nn.utils.prune`` pruning (its ``weight`` attribute is only refreshed by a forward pass)."""
    if hasattr(m, "weight_orig") and hasattr(m, "weight_mask"):
        return m.weight_orig * m.weight_mask
    return m.weight


def _chain_linears(model: nn.Module, name: str = "model") -> list:
    """The Linear layers of an MLP whose only parametrised layers they are, in the order its forward runs
    them (traced: the order the modules were registered in need not be it); else an error."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    linears = _linears(model)
    if not linears:
        raise ValueError(f"{name} must contain nn.Linear layers, got none")
    others = sorted({type(m).__name__ for m in model.modules()
                     if not isinstance(m, nn.Linear) and any(True for _ in m.parameters(recurse=False))})
    if others:
        raise ValueError(f"{name} must be an MLP whose only parametrised layers are nn.Linear, got {', '.join(others)}")
    from .tracing import trace_mlp

    modules = dict(model.named_modules())
    try:
        order = [modules[path] for path in trace_mlp(model).names]
    except (ValueError, RuntimeError) as err:
        for i in range(1, len(linears)):
            if linears[i].in_features != linears[i - 1].out_features:
                raise ValueError(f"{name}'s Linear layers must form a chain: layer {i} has "
                                 f"{linears[i].in_features} inputs but layer {i - 1} has "
                                 f"{linears[i - 1].out_features} outputs") from None
        raise ValueError(f"{name} must be an MLP whose forward runs its Linear layers as a chain: {err}") from None
    return order


class _SmallestEigenvalueSum(torch.autograd.Function):
    """Sum of eigenvalues 2..m+1 of I - D^-1/2 A D^-1/2 of the graph of |W| matrices, with its gradient.

    Inputs: ``m``, ``tol``, ``seed`` and the non-negative weight matrices in torch's (out, in) layout.
    Forward solves with netmod's native Lanczos solver (float64). Backward: for an edge of weight w
    between live nodes a and b, d lambda_k / dw = -2 u_a u_b + (1 - lambda_k)(u_a^2 + u_b^2) with
    u = v_k / sqrt(d) (the derivative of 1 - v^T N v at fixed v, N = D^-1/2 A D^-1/2; the v-dependence
    drops out since v is a unit eigenvector), summed over k. Entries touching a zero-degree node get 0.
    """

    @staticmethod
    def forward(ctx, m, tol, seed, *weights):
        from .spectral import spectral_embedding

        mats = [np.ascontiguousarray(w.detach().to(device="cpu", dtype=torch.float64).numpy().T) for w in weights]
        sizes = [mats[0].shape[0]] + [a.shape[1] for a in mats]
        degree = [np.zeros(s) for s in sizes]
        for l, a in enumerate(mats):
            degree[l] += a.sum(axis=1)
            degree[l + 1] += a.sum(axis=0)
        n_live = int(sum((d > 0).sum() for d in degree))
        if n_live < m + 1:
            raise ValueError(f"n_eigenvalues must be <= the number of units with edges minus 1 ({n_live - 1}), "
                             f"got {m}")
        emb = spectral_embedding(mats, n_components=max(m + 1, 2), seed=seed, tol=tol)
        lam = np.asarray(emb.eigenvalues[1 : m + 1], dtype=np.float64)
        vec = np.asarray(emb.vectors[:, 1 : m + 1], dtype=np.float64)
        # Per layer: u = v / sqrt(d) (0 on zero-degree nodes) and q = sum_k (1 - lambda_k) u_k^2.
        us, qs, lives = [], [], []
        start = 0
        for d in degree:
            live = d > 0
            inv = np.zeros_like(d)
            inv[live] = 1.0 / np.sqrt(d[live])
            u = vec[start : start + d.size] * inv[:, None]
            us.append(u)
            qs.append((u * u) @ (1.0 - lam))
            lives.append(live)
            start += d.size
        ctx.parts = (us, qs, lives, [w.dtype for w in weights], [w.device for w in weights])
        return torch.tensor(float(lam.sum()), dtype=weights[0].dtype, device=weights[0].device)

    @staticmethod
    def backward(ctx, grad_out):
        us, qs, lives, dtypes, devices = ctx.parts
        scale = float(grad_out)
        grads = []
        for l in range(len(us) - 1):
            # (out, in) layout: rows are the units of layer l + 1, columns those of layer l.
            g = (-2.0 * scale) * us[l + 1] @ us[l].T
            g += scale * qs[l + 1][:, None]
            g += scale * qs[l][None, :]
            if not (lives[l].all() and lives[l + 1].all()):
                g *= lives[l + 1][:, None] & lives[l][None, :]
            grads.append(torch.from_numpy(g).to(dtype=dtypes[l], device=devices[l]))
        return (None, None, None, *grads)


def clusterability_penalty(model: nn.Module, *, n_eigenvalues: int = 3, tol: float = PENALTY_TOL,
                           seed: int | None = 0) -> torch.Tensor:
    """Sum of eigenvalues 2..m+1 of the normalised Laplacian of an MLP's |W| graph, differentiably.

    The graph is :func:`netmod.from_layers`' (= :func:`netmod.from_torch`'s for an MLP): one node
    per unit, inputs included, an edge |w| per weight, biases ignored, zero-degree nodes dropped. Its
    symmetric normalised Laplacian L = I - D^-1/2 A D^-1/2 has eigenvalues
    0 = lambda_1 <= lambda_2 <= ...; the penalty is lambda_2 + ... + lambda_{m+1}, small when the
    graph has m + 1 weakly joined parts (the regulariser of "Clusterability in neural networks",
    REFERENCE.md 8). The eigenvectors come from netmod's native solver
    (:func:`netmod.spectral_embedding`), not a dense eigendecomposition; the gradient is the
    eigenvalue derivative d lambda = v^T dL v, with L's dependence on the weights through
    D^-1/2 included, and autograd chains it through |W| (and through pruning masks).

    Parameters
    ----------
    model : torch.nn.Module
        An MLP: its ``nn.Linear`` layers (module order) must chain and be its only parametrised
        layers. Live ``torch.nn.utils.prune`` pruning is read as ``weight_orig * weight_mask``.
    n_eigenvalues : int, default 3
        m, the number of eigenvalues summed (2021: 3); at most the number of units with edges - 1.
    tol : float, default 1e-10
        Eigensolver tolerance (residual norm of each eigenvector).
    seed : int or None, default 0
        Seed of the eigensolver's start block (the value does not depend on it beyond ``tol``).

    Returns
    -------
    torch.Tensor
        A 0-d tensor of the weights' dtype, attached to the autograd graph.

    Raises
    ------
    TypeError
        If ``model`` is not a torch module or ``n_eigenvalues`` not an integer.
    ValueError
        If the model has no Linear layers, other parametrised layers, Linear layers that do not
        chain, non-finite weights, ``n_eigenvalues`` < 1 or above the number of units with edges
        minus 1, or ``tol`` <= 0.

    Notes
    -----
    Repeated eigenvalues. Eigenvalue 0 has the multiplicity of the number of connected components
    (a pruned net can fall apart): its extra copies count as 0 among lambda_2..lambda_{m+1}, with
    zero gradient (the derivative formula gives exactly 0 for every vector of the null space), so the
    penalty stays exact and smooth there. Ties inside lambda_2..lambda_{m+1} are harmless: the sum over
    a whole eigenspace does not depend on the basis the solver returns. If lambda_{m+1} = lambda_{m+2}
    (the last eigenvalue summed ties with the first one left out) the penalty is still continuous and
    its value right, but it is not differentiable there: the gradient returned is that of the vector
    the solver happened to return for lambda_{m+1}, one of the one-sided derivatives (the sum of the
    m + 1 smallest eigenvalues is a concave function of L, so it is a supergradient in L). Exactly
    zero weights get gradient 0 (torch's d|w|/dw at 0), as do weights touching a zero-degree unit.

    Examples
    --------
    >>> m = keras_like_mlp([6, 5, 4])
    >>> p = clusterability_penalty(m, n_eigenvalues=2)
    >>> p.backward()
    >>> import netmod
    >>> e = netmod.spectral_embedding(netmod.from_torch(m), n_components=3, tol=1e-12)
    >>> bool(abs(p.item() - e.eigenvalues[1:].sum()) < 1e-6), m[0].weight.grad.shape
    (True, torch.Size([5, 6]))
    """
    linears = _chain_linears(model)
    m = check_int(n_eigenvalues, "n_eigenvalues", 1)
    tol = check_tol(tol)
    seed = check_seed(seed)
    return _penalty(linears, m, tol, seed)


def _penalty(linears: list, m: int, tol: float, seed: int) -> torch.Tensor:
    """clusterability_penalty of the (checked, execution-ordered) Linear layers of an MLP."""
    weights = [_effective_weight(lin) for lin in linears]
    for i, w in enumerate(weights):
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"model's Linear layer {i} weights must be finite, got NaN or inf")
    return _SmallestEigenvalueSum.apply(m, tol, seed, *[w.abs() for w in weights])


_HOMOGENEOUS = (nn.ReLU, nn.Dropout, nn.Identity)


def _balance_layers(model: nn.Module) -> list:
    """The Linear layers of a Sequential MLP with only ReLU / Dropout / Identity between them (and a
    Flatten before the first), for which unit rescaling preserves the function; else an error."""
    linears = _chain_linears(model)
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential MLP (Linear, ReLU, Dropout), got {type(model).__name__}")
    children = list(model.children())
    first = children.index(linears[0])
    if any(not isinstance(c, (nn.Flatten, nn.Identity)) for c in children[:first]):
        raise ValueError("model must hold only Flatten or Identity before its first Linear layer")
    between = [c for c in children[first:] if not isinstance(c, nn.Linear)]
    bad = sorted({type(c).__name__ for c in between if not isinstance(c, _HOMOGENEOUS)})
    if bad or children[-1] is not linears[-1]:
        raise ValueError("unit rescaling preserves the function only through positively homogeneous layers: "
                         f"model must have only ReLU, Dropout or Identity between and no layer after its Linear "
                         f"layers, got {', '.join(bad) or type(children[-1]).__name__}")
    pos = [children.index(lin) for lin in linears]
    for a, b in zip(pos[:-1], pos[1:]):
        if not any(isinstance(c, nn.ReLU) for c in children[a + 1 : b]):
            raise ValueError("model must have a ReLU between consecutive Linear layers (a purely linear pair "
                             "could be rescaled too, but is not an MLP this balances)")
    return linears


def _orig(m: nn.Linear) -> torch.Tensor:
    return m.weight_orig if hasattr(m, "weight_orig") else m.weight


@torch.no_grad()
def _balance_sweep(linears: list) -> None:
    """One forward sweep of L1 balancing over the hidden layers (see :func:`balance_hidden_units`)."""
    for lin, nxt in zip(linears[:-1], linears[1:]):
        w_in, w_out = _effective_weight(lin), _effective_weight(nxt)
        s_in = w_in.abs().sum(dim=1)
        s_out = w_out.abs().sum(dim=0)
        ok = (s_in > 0) & (s_out > 0)
        c = torch.where(ok, torch.sqrt(s_out / torch.where(ok, s_in, 1.0)), 1.0)
        _orig(lin).mul_(c[:, None])
        if lin.bias is not None:
            lin.bias.mul_(c)
        _orig(nxt).div_(c[None, :])
    for lin in linears:
        if hasattr(lin, "weight_orig") and hasattr(lin, "weight_mask"):
            lin.weight = lin.weight_orig * lin.weight_mask  # what torch's pruning hook sets on each forward


@torch.no_grad()
def _imbalance(linears: list) -> float:
    worst = 0.0
    for lin, nxt in zip(linears[:-1], linears[1:]):
        s_in = _effective_weight(lin).abs().sum(dim=1).double()
        s_out = _effective_weight(nxt).abs().sum(dim=0).double()
        ok = (s_in > 0) & (s_out > 0)
        if bool(ok.any()):
            worst = max(worst, float(torch.log(s_out[ok] / s_in[ok]).abs().max()))
    return worst


def balance_hidden_units(model: nn.Module, *, n_sweeps: int = 1) -> float:
    """L1-balance the hidden units of a ReLU MLP in place, without changing its function.

    ReLU is positively homogeneous, so scaling a hidden unit's incoming weights and bias by c > 0 and
    its outgoing weights by 1/c leaves the network's outputs as they were, while changing its |W|
    graph (and so its n-cut and spectrum). This fixes the scale: each hidden unit j gets
    c_j = sqrt(out_j / in_j), where in_j and out_j are the sums of |w| of its incoming and outgoing
    weights, after which both equal sqrt(in_j out_j) ("L1 balancing"). Units of one hidden layer
    are independent; rescaling a layer unbalances its neighbours a little, so one sweep goes through
    the hidden layers in order and sweeps repeat: each layer's step exactly minimises the network's
    total |w| over that layer's scales, so the total never grows and the sweeps converge to the
    rescaling of least total |w| (where every unit is balanced). Units with no incoming or no
    outgoing weight are left as they are. Under live ``torch.nn.utils.prune`` pruning the sums are
    those of ``weight_orig * weight_mask``, ``weight_orig`` is rescaled and the masks are untouched,
    so pruned weights stay pruned. Optimizer state is not rescaled.

    Parameters
    ----------
    model : torch.nn.Sequential
        Linear layers with ReLU (and Dropout / Identity) between them, nothing after the last
        (e.g. :func:`netmod.torch_models.keras_like_mlp`).
    n_sweeps : int, default 1
        Sweeps over the hidden layers (training does one per optimiser step).

    Returns
    -------
    float
        The remaining imbalance: max over hidden units of |log(out_j / in_j)| (0 when balanced).

    Raises
    ------
    TypeError, ValueError
        If ``model`` is not such an MLP, or ``n_sweeps`` < 1.

    Examples
    --------
    >>> m = keras_like_mlp([5, 4, 3, 2], seed=1)
    >>> x = torch.rand(8, 5)
    >>> before = m(x)
    >>> balance_hidden_units(m, n_sweeps=200) < 1e-6
    True
    >>> torch.allclose(m(x), before, atol=1e-6)
    True
    """
    linears = _balance_layers(model)
    n_sweeps = check_int(n_sweeps, "n_sweeps", 1)
    for _ in range(n_sweeps):
        _balance_sweep(linears)
    return _imbalance(linears)


@torch.no_grad()
def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 2048) -> float:
    """Accuracy of ``model`` on uint8 images (scaled to [0, 1]) and labels."""
    x, y = _tensors(images, labels)
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(dim=1) == y[i : i + batch_size]).sum())
    model.train(was)
    return correct / max(len(x), 1)


BALANCE_START_SWEEPS = 100
"""Sweeps of :func:`balance_hidden_units` before the first step of a regularised run (then one per step)."""


def _check_clusterability(model, clusterability, eigenvalues) -> tuple:
    """Validated (lambda, m, balanced Linear layers or None) of a training call."""
    lam = check_real(clusterability, "clusterability", minimum=0.0)
    m = check_int(eigenvalues, "clusterability_eigenvalues", 1)
    return lam, m, (_balance_layers(model) if lam > 0 else None)


def _epochs(model, x, y, *, epochs, batch_size, lr, l1, l2, gen, on_step=None, progress=None, desc="train",
            clusterability=0.0, eigenvalues=3, balanced=None):
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=ADAM_EPS)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    step = 0
    model.train()
    if balanced is not None:
        for _ in range(BALANCE_START_SWEEPS):
            _balance_sweep(balanced)
    disable = None if progress is None else not progress
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", disable=disable, leave=False):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx]) + regularization(model, l1=l1, l2=l2)
            if clusterability:
                # The layers were checked and ordered once (_check_clusterability), not traced every step.
                loss = loss + (clusterability / eigenvalues) * _penalty(balanced, eigenvalues, PENALTY_TOL, 0)
            loss.backward()
            opt.step()
            step += 1
            if on_step is not None:
                on_step(step)
            if balanced is not None:
                _balance_sweep(balanced)
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
    return losses


def train_mlp(
    train: tuple,
    *,
    sizes: Sequence[int] = (784, 256, 256, 256, 256, 10),
    dropout: float = 0.0,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    l1: float = 0.0,
    l2: float = 0.0,
    seed: int | None = 0,
    test: tuple | None = None,
    progress: bool | None = None,
    clusterability: float = 0.0,
    clusterability_eigenvalues: int = 3,
    init: str = "glorot",
) -> tuple:
    """Train an MLP with the papers' protocol: ReLU, cross-entropy, Adam(1e-3), batch 128.

    Parameters
    ----------
    train, test : (images, labels)
        uint8 images (n, 28, 28) or (n, 784) and integer labels (any pixel values in
        [0, 255] work: they are divided by 255).
    sizes, dropout, epochs, batch_size, lr, l1, l2 : see REFERENCE.md 5
    seed : int or None, default 0
        Seeds the initialisation, the batch order and dropout (None draws
        one); the global torch RNG is left as it was. Deterministic on the CPU for a given
        number of torch threads (``torch.get_num_threads()``).
    clusterability : float, default 0.0
        lambda of the clusterability regulariser (2021: 0.1): ``(lambda / m) *``
        :func:`clusterability_penalty` is added to every batch's loss, and the hidden units are
        L1-balanced (:func:`balance_hidden_units`): to convergence (up to 100 sweeps) before the
        first step, then one sweep after every optimiser step. 0 trains exactly as without it.
    clusterability_eigenvalues : int, default 3
        m, the number of eigenvalues (2..m+1) in the penalty.
    init : {"glorot", "clusterable"}, default "glorot"
        The initialisation (:func:`initial_mlp`): Keras' Glorot-uniform, or the
        2021 clusterable initialisation.

    Returns
    -------
    (nn.Sequential, TrainResult)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images, labels = rng.integers(0, 256, (64, 4, 4)), rng.integers(0, 3, 64)
    >>> m, r = train_mlp((images, labels), sizes=(16, 8, 3), epochs=2, batch_size=32, clusterability=0.1,
    ...                  progress=False)
    >>> len(r.losses), balance_hidden_units(m) < 0.1
    (2, True)
    """
    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = initial_mlp(sizes, dropout=dropout, seed=seed, init=init)
        lam, m, balanced = _check_clusterability(model, clusterability, clusterability_eigenvalues)
        gen = torch.Generator().manual_seed(_offset(seed, 1))
        x, y = _tensors(*train)
        losses = _epochs(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, l1=l1, l2=l2, gen=gen,
                         progress=progress, clusterability=lam, eigenvalues=m, balanced=balanced)
    result = TrainResult(losses=losses)
    if test is not None:
        result.test_accuracy = evaluate(model, *test)
    return model, result


def polynomial_sparsity(step: int, total: int, *, initial: float = 0.5, final: float = 0.9, power: float = 3) -> float:
    """TF-MOT PolynomialDecay: final + (initial - final) (1 - step/total)^power.

    Examples
    --------
    >>> polynomial_sparsity(0, 100), polynomial_sparsity(100, 100), round(polynomial_sparsity(50, 100), 4)
    (0.5, 0.9, 0.85)
    """
    frac = min(max(step / total, 0.0), 1.0)
    return final + (initial - final) * (1.0 - frac) ** power


@torch.no_grad()
def _apply_sparsity(model: nn.Module, sparsity: float) -> None:
    """Re-prune every Linear weight to ``sparsity`` by current magnitude.

    The first call installs torch's pruning parametrisation (weight_orig,
    weight_mask); later calls rewrite the mask in place, so the optimizer
    keeps training the same weight_orig tensor. Already-pruned entries have
    magnitude 0 and so stay pruned while the sparsity grows.
    """
    for m in _linears(model):
        k = round(sparsity * m.weight.numel())
        if not prune.is_pruned(m):
            prune.l1_unstructured(m, "weight", amount=k)
            continue
        magnitude = (m.weight_orig * m.weight_mask).abs().reshape(-1)
        m.weight_mask.copy_(smallest_mask(magnitude, k).reshape(m.weight_mask.shape))


def smallest_mask(values: torch.Tensor, k: int) -> torch.Tensor:
    """A float mask, 0 at the ``k`` smallest of ``values`` (ties to the lower index), 1 elsewhere.

    The same mask as zeroing ``torch.argsort(values, stable=True)[:k]``, in
    linear time: a k-th-value threshold, then the tied entries in index order.

    Examples
    --------
    >>> smallest_mask(torch.tensor([0.3, 0.0, 0.2, 0.0, 0.2]), 3)
    tensor([1., 0., 0., 0., 1.])
    """
    flat = values.detach().reshape(-1).cpu().numpy()
    mask = np.ones(flat.shape, dtype=np.float32)
    if k >= flat.size:
        mask[:] = 0.0
    elif k > 0:
        threshold = np.partition(flat, k - 1)[k - 1]
        below = flat < threshold
        mask[below] = 0.0
        ties = np.flatnonzero(flat == threshold)
        mask[ties[: k - int(below.sum())]] = 0.0
    return torch.from_numpy(mask).to(dtype=values.dtype, device=values.device)


def prune_mlp(
    model: nn.Module,
    train: tuple,
    *,
    epochs: int = 20,
    initial_sparsity: float = 0.5,
    final_sparsity: float = 0.9,
    power: float = 3,
    frequency: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    l1: float = 0.0,
    l2: float = 0.0,
    seed: int | None = 0,
    test: tuple | None = None,
    progress: bool | None = None,
    clusterability: float = 0.0,
    clusterability_eigenvalues: int = 3,
) -> tuple:
    """Continue training with per-layer magnitude pruning (a fresh Adam).

    Every ``frequency`` steps (and at the last step) each Linear weight is
    re-pruned to ``polynomial_sparsity(step, total)`` by magnitude with
    ``torch.nn.utils.prune`` (biases untouched). Returns the model with the
    pruning made permanent (``prune.remove``) and its per-layer sparsity.
    ``seed`` (int or None) seeds the batch order and dropout.
    ``clusterability`` and ``clusterability_eigenvalues`` add the clusterability
    regulariser as in :func:`train_mlp`; the hidden units are balanced after each
    step's re-pruning, on the masked weights (pruned weights stay 0).
    """
    seed = check_seed(seed)
    lam, m, balanced = _check_clusterability(model, clusterability, clusterability_eigenvalues)
    x, y = _tensors(*train)
    steps_per_epoch = -(-len(x) // batch_size)
    total = epochs * steps_per_epoch

    def on_step(step):
        if step % frequency == 0 or step == total:
            _apply_sparsity(model, polynomial_sparsity(step, total, initial=initial_sparsity, final=final_sparsity,
                                                       power=power))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_offset(seed, 2))
        _apply_sparsity(model, initial_sparsity)
        gen = torch.Generator().manual_seed(_offset(seed, 3))
        losses = _epochs(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, l1=l1, l2=l2, gen=gen,
                         on_step=on_step, progress=progress, desc="prune", clusterability=lam, eigenvalues=m,
                         balanced=balanced)
    for m in _linears(model):
        if prune.is_pruned(m):
            prune.remove(m, "weight")
    result = TrainResult(losses=losses, sparsity=[float((m.weight == 0).float().mean()) for m in _linears(model)])
    if test is not None:
        result.test_accuracy = evaluate(model, *test)
    return model, result


def save_model(model: nn.Module, path: str | Path, **metadata) -> None:
    """state_dict to ``path`` and JSON metadata (sizes, dropout, anything given) beside it.

    Live ``torch.nn.utils.prune`` reparametrisations are saved as the weights they give
    (``weight_orig * weight_mask`` under ``weight``), so :func:`load_model` reads them.
    """
    path = Path(path)
    linears = _linears(model)
    sizes = [linears[0].in_features] + [m.out_features for m in linears]
    dropout = next((m.p for m in model.modules() if isinstance(m, nn.Dropout)), 0.0)
    state = model.state_dict()
    for key in [k for k in state if k.endswith("_orig") and k[:-5] + "_mask" in state]:
        mask = state.pop(key[:-5] + "_mask")
        state[key[:-5]] = (state.pop(key) * mask).detach().clone()
    torch.save(state, path)
    meta = {"sizes": sizes, "dropout": dropout, **metadata}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))


def load_model(path: str | Path) -> tuple:
    """Load a model saved by :func:`save_model` (``weights_only=True``): (model, metadata)."""
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    model = keras_like_mlp(meta["sizes"], dropout=meta.get("dropout", 0.0))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model, meta


# --- several seeds at once ----------------------------------------------------------------

INITS = ("glorot", "clusterable")
"""Initialisations of :func:`train_mlp` and :func:`train_mlps` (REFERENCE.md 5)."""


def initial_mlp(sizes: Sequence[int], *, dropout: float = 0.0, seed: int = 0, init: str = "glorot") -> nn.Sequential:
    """The untrained network of a training run: Keras' Glorot-uniform weights and zero biases, or the
    2021 "clusterable initialisation" (REFERENCE.md 5).

    ``init="clusterable"`` multiplies the Glorot weights by
    :func:`netmod.synthetic.clusterable_factors` (10 random modules over every
    unit after the inputs, x4.6 within a module, x0.6 across, the first layer
    untouched; the module draw is seeded by ``seed``).

    Examples
    --------
    >>> a = initial_mlp([6, 5, 4], seed=1)
    >>> b = initial_mlp([6, 5, 4], seed=1, init="clusterable")
    >>> bool(torch.equal(a[0].weight, b[0].weight)), bool(torch.equal(a[2].weight, b[2].weight))
    (True, False)
    """
    from ._validate import check_choice

    check_choice(init, "init", INITS)
    model = keras_like_mlp(sizes, dropout=dropout, seed=seed)
    if init == "clusterable":
        from .synthetic import clusterable_factors

        factors = clusterable_factors([int(s) for s in sizes], seed=seed)
        with torch.no_grad():
            for m, f in zip(_linears(model), factors):
                m.weight.mul_(torch.from_numpy(f.T).to(m.weight.dtype))
    return model


class _Stack:
    """S MLPs of one shape as stacked tensors: weights (S, in, out), biases (S, 1, out), optional masks.

    The forward of seed s is exactly its own network's (h @ W_s + b_s, ReLU, dropout with the seed's
    own masks); the loss is the sum of the seeds' losses, so each seed's gradient, and so its Adam
    step (elementwise), is its own.
    """

    def __init__(self, models: list, dropout: float, seeds: list, stream: int):
        linears = [_linears(m) for m in models]
        self.weights = [torch.stack([ls[i].weight.detach().t() for ls in linears]).contiguous().requires_grad_()
                        for i in range(len(linears[0]))]
        self.biases = [torch.stack([ls[i].bias.detach()[None, :] for ls in linears]).contiguous().requires_grad_()
                       for i in range(len(linears[0]))]
        self.masks = None
        self.dropout = float(dropout)
        self.rngs = [np.random.default_rng([seed, stream]) for seed in seeds]

    def params(self) -> list:
        return self.weights + self.biases

    def effective(self) -> list:
        return self.weights if self.masks is None else [w * m for w, m in zip(self.weights, self.masks)]

    def _dropout_mask(self, shape: tuple) -> torch.Tensor:
        """(S, B, n) keep-masks scaled by 1/(1-p), each seed's from its own generator."""
        s, b, n = shape
        keep = 1.0 - self.dropout
        if self.dropout == 0.5:  # one random bit per unit
            bits = [np.unpackbits(np.frombuffer(r.bytes(-(-b * n // 8)), dtype=np.uint8))[: b * n] for r in self.rngs]
            mask = np.stack(bits).reshape(s, b, n).astype(np.float32)
        else:
            mask = np.stack([r.random((b, n), dtype=np.float32) < keep for r in self.rngs]).astype(np.float32)
        return torch.from_numpy(mask).mul_(1.0 / keep)

    def forward(self, x: torch.Tensor, weights: list) -> torch.Tensor:
        h = x
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
                if self.dropout > 0:
                    h = h * self._dropout_mask(tuple(h.shape))
        return h

    def regularization(self, weights: list, l1: float, l2: float) -> torch.Tensor:
        """Each seed's l1 * sum|W| + l2 * sum W^2 (as :func:`regularization`): shape (S,)."""
        total = torch.zeros(weights[0].shape[0])
        for w in weights:
            if l1:
                total = total + l1 * w.abs().sum(dim=(1, 2))
            if l2:
                total = total + l2 * (w**2).sum(dim=(1, 2))
        return total

    @torch.no_grad()
    def prune_to(self, sparsity: float) -> None:
        """Each seed's layer re-pruned to ``sparsity`` by current magnitude (as :func:`prune_mlp`)."""
        if self.masks is None:
            self.masks = [torch.ones_like(w) for w in self.weights]
        for w, m in zip(self.weights, self.masks):
            k = round(sparsity * w[0].numel())
            for s in range(w.shape[0]):
                # Transposed back to torch's (out, in) order, so ties fall as in prune_mlp.
                magnitude = (w[s] * m[s]).abs().t().reshape(-1)
                m[s].copy_(smallest_mask(magnitude, k).reshape(m[s].shape[::-1]).t())

    @torch.no_grad()
    def write_back(self, models: list) -> None:
        for s, model in enumerate(models):
            for i, lin in enumerate(_linears(model)):
                w = self.weights[i][s] if self.masks is None else self.weights[i][s] * self.masks[i][s]
                lin.weight.copy_(w.t())
                lin.bias.copy_(self.biases[i][s, 0])


def _stacked_epochs(stack: _Stack, x, y, gens, *, epochs, batch_size, lr, l1, l2, on_step=None, progress=None,
                    desc="train") -> list:
    """:func:`_epochs` for a stack: per-seed batch orders from ``gens``; per-seed mean losses per epoch."""
    from tqdm.auto import tqdm

    try:
        opt = torch.optim.Adam(stack.params(), lr=lr, eps=ADAM_EPS, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a torch without the fused CPU Adam
        opt = torch.optim.Adam(stack.params(), lr=lr, eps=ADAM_EPS)
    s = len(gens)
    losses = [[] for _ in range(s)]
    step = 0
    disable = None if progress is None else not progress
    for _ in tqdm(range(epochs), desc=f"{desc} x{s}", unit="epoch", disable=disable, leave=False):
        order = torch.stack([torch.randperm(len(x), generator=g) for g in gens])
        total = torch.zeros(s, dtype=torch.float64)
        for i in range(0, len(x), batch_size):
            idx = order[:, i : i + batch_size]
            for p in stack.params():
                p.grad = None
            weights = stack.effective()
            logits = stack.forward(x[idx], weights)
            per_seed = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[idx].reshape(-1),
                                                   reduction="none").reshape(s, -1).mean(dim=1)
            per_seed = per_seed + stack.regularization(weights, l1, l2)
            per_seed.sum().backward()
            total += per_seed.detach().double() * idx.shape[1]
            opt.step()
            step += 1
            if on_step is not None:
                on_step(step)
        for j in range(s):
            losses[j].append(float(total[j]) / len(x))
    return losses


def _check_seeds(seeds) -> list:
    seeds = [check_seed(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct seeds, got {seeds}")
    return seeds


def train_mlps(
    train: tuple,
    *,
    seeds: Sequence[int],
    sizes: Sequence[int] = (784, 256, 256, 256, 256, 10),
    dropout: float = 0.0,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    l1: float = 0.0,
    l2: float = 0.0,
    init: str = "glorot",
    test: tuple | None = None,
    progress: bool | None = None,
) -> list:
    """Train one network per seed at once: the seeds stacked as one batched network.

    Each seed's network is :func:`train_mlp`'s protocol with that seed's
    initialisation (:func:`initial_mlp`) and batch order, its own dropout
    masks, its own loss and its own Adam state; the matrix products of all
    seeds run as batched products (``torch.baddbmm``), which uses the cores
    better than one small network at a time (``bench/bench_training.py``).
    The networks are not bit-identical to :func:`train_mlp`'s: the dropout
    masks come from a per-seed numpy generator, and batched products sum in
    another order. A seed's masks and batch order do not depend on the
    other seeds of the stack.

    Parameters
    ----------
    train, test, sizes, dropout, epochs, batch_size, lr, l1, l2 : as :func:`train_mlp`
    seeds : sequence of int
        Distinct seeds, one network each.
    init : {"glorot", "clusterable"}
        See :func:`initial_mlp`.

    Returns
    -------
    list of (nn.Sequential, TrainResult), in the order of ``seeds``

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = rng.integers(0, 256, (64, 4, 4)), rng.integers(0, 3, 64)
    >>> nets = train_mlps(data, seeds=[0, 1], sizes=(16, 8, 3), epochs=2, batch_size=32, progress=False)
    >>> [len(r.losses) for _, r in nets]
    [2, 2]
    """
    seeds = _check_seeds(seeds)
    check_int(epochs, "epochs", 1)
    check_int(batch_size, "batch_size", 1)
    models = [initial_mlp(sizes, dropout=dropout, seed=s, init=init) for s in seeds]
    stack = _Stack(models, dropout, seeds, stream=4)
    gens = [torch.Generator().manual_seed(_offset(s, 1)) for s in seeds]
    x, y = _tensors(*train)
    losses = _stacked_epochs(stack, x, y, gens, epochs=epochs, batch_size=batch_size, lr=lr, l1=l1, l2=l2,
                             progress=progress)
    stack.write_back(models)
    out = []
    for model, loss in zip(models, losses):
        result = TrainResult(losses=loss)
        if test is not None:
            result.test_accuracy = evaluate(model, *test)
        model.eval()
        out.append((model, result))
    return out


def prune_mlps(
    models: Sequence[nn.Module],
    train: tuple,
    *,
    seeds: Sequence[int],
    epochs: int = 20,
    initial_sparsity: float = 0.5,
    final_sparsity: float = 0.9,
    power: float = 3,
    frequency: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    l1: float = 0.0,
    l2: float = 0.0,
    test: tuple | None = None,
    progress: bool | None = None,
) -> list:
    """:func:`prune_mlp` for several networks of one shape at once (stacked, as :func:`train_mlps`).

    Network j continues training with seed ``seeds[j]`` (batch order, dropout
    masks) under per-layer magnitude pruning on the polynomial schedule, the
    masks recomputed every ``frequency`` steps from the magnitudes of the
    masked weights, so pruned weights stay pruned. The models are changed in
    place (their weights end pruned, with no reparametrisation left) and
    returned with their results.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = rng.integers(0, 256, (64, 4, 4)), rng.integers(0, 3, 64)
    >>> nets = train_mlps(data, seeds=[0, 1], sizes=(16, 8, 3), epochs=1, batch_size=32, progress=False)
    >>> pruned = prune_mlps([m for m, _ in nets], data, seeds=[0, 1], epochs=2, batch_size=32, progress=False)
    >>> [round(s, 2) for s in pruned[0][1].sparsity]
    [0.9, 0.92]
    """
    seeds = _check_seeds(seeds)
    models = list(models)
    if len(models) != len(seeds):
        raise ValueError(f"one seed per model: {len(models)} models, {len(seeds)} seeds")
    shapes = {tuple(tuple(m.weight.shape) for m in _linears(model)) for model in models}
    if len(shapes) != 1 or any(prune.is_pruned(m) for model in models for m in _linears(model)):
        raise ValueError(f"prune_mlps needs networks of one shape without live pruning, got shapes {shapes}")
    dropouts = {next((m.p for m in model.modules() if isinstance(m, nn.Dropout)), 0.0) for model in models}
    if len(dropouts) != 1:
        raise ValueError(f"prune_mlps needs networks with one dropout rate, got {sorted(dropouts)}")
    x, y = _tensors(*train)
    total = epochs * -(-len(x) // batch_size)
    stack = _Stack(models, dropouts.pop(), seeds, stream=5)

    def on_step(step):
        if step % frequency == 0 or step == total:
            stack.prune_to(polynomial_sparsity(step, total, initial=initial_sparsity, final=final_sparsity,
                                               power=power))

    for model in models:
        model.train()
    stack.prune_to(initial_sparsity)
    gens = [torch.Generator().manual_seed(_offset(s, 3)) for s in seeds]
    losses = _stacked_epochs(stack, x, y, gens, epochs=epochs, batch_size=batch_size, lr=lr, l1=l1, l2=l2,
                             on_step=on_step, progress=progress, desc="prune")
    stack.write_back(models)
    out = []
    for model, loss in zip(models, losses):
        result = TrainResult(losses=loss, sparsity=[float((m.weight == 0).float().mean()) for m in _linears(model)])
        if test is not None:
            result.test_accuracy = evaluate(model, *test)
        model.eval()
        out.append((model, result))
    return out
