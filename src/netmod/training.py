"""Training, pruning and saving MLPs as in the modularity papers (REFERENCE.md 5).

Keras defaults are matched where PyTorch differs: Glorot-uniform weights and
zero biases (:func:`netmod.torch_models.keras_like_mlp`), Adam epsilon 1e-7.
Pruning follows TensorFlow Model Optimization's magnitude pruning: per-layer
sparsity on a polynomial schedule, the mask recomputed every ``frequency``
steps from the current magnitudes, done with ``torch.nn.utils.prune``.
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

from ._validate import check_seed
from .torch_models import keras_like_mlp

__all__ = [
    "TrainResult",
    "evaluate",
    "load_model",
    "polynomial_sparsity",
    "prune_mlp",
    "regularization",
    "save_model",
    "smallest_mask",
    "train_mlp",
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


def _epochs(model, x, y, *, epochs, batch_size, lr, l1, l2, gen, on_step=None, progress=None, desc="train"):
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=ADAM_EPS)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    step = 0
    model.train()
    disable = None if progress is None else not progress
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", disable=disable, leave=False):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx]) + regularization(model, l1=l1, l2=l2)
            loss.backward()
            opt.step()
            step += 1
            if on_step is not None:
                on_step(step)
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
) -> tuple:
    """Train an MLP with the papers' protocol: ReLU, cross-entropy, Adam(1e-3), batch 128.

    Parameters
    ----------
    train, test : (images, labels)
        uint8 images (n, 28, 28) or (n, 784) and integer labels.
    sizes, dropout, epochs, batch_size, lr, l1, l2 : see REFERENCE.md 5
    seed : int or None, default 0
        Seeds the initialisation, the batch order and dropout (None draws
        one); the global torch RNG is left as it was. Deterministic on the CPU for a given
        number of torch threads (``torch.get_num_threads()``).

    Returns
    -------
    (nn.Sequential, TrainResult)
    """
    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = keras_like_mlp(sizes, dropout=dropout, seed=seed)
        gen = torch.Generator().manual_seed(_offset(seed, 1))
        x, y = _tensors(*train)
        losses = _epochs(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, l1=l1, l2=l2, gen=gen,
                         progress=progress)
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
) -> tuple:
    """Continue training with per-layer magnitude pruning (a fresh Adam).

    Every ``frequency`` steps (and at the last step) each Linear weight is
    re-pruned to ``polynomial_sparsity(step, total)`` by magnitude with
    ``torch.nn.utils.prune`` (biases untouched). Returns the model with the
    pruning made permanent (``prune.remove``) and its per-layer sparsity.
    ``seed`` (int or None) seeds the batch order and dropout.
    """
    seed = check_seed(seed)
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
                         on_step=on_step, progress=progress, desc="prune")
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
