"""Activation graphs: a network's hidden units joined by how their activations co-vary (REFERENCE.md 6e, 8).

:func:`from_activations` runs a torch model on a data set and builds a graph whose nodes are its
hidden units (every parametrised layer's output units but the output layer's) and whose edge weights
are the squared Spearman (or Pearson) correlations of the units' activations across examples: a
"functional" graph beside the weight graph of :func:`netmod.from_torch`. Every netmod function that
takes a graph takes it (``ncut``, ``spectral_clustering``, ``compare``, ``leiden``, ``shuffle_null``).
:func:`compare_activations` asks whether units that fire together are the units the weights group
together: NMI against label permutations, the n-cut of the activation graph under the weight
partition ("transfer n-cut"), and the mean r^2 within and between weight clusters.

What a unit's activation is (per example, one number):

- A Linear layer's unit: its **post-activation** by default (``linear_activation="post"``), the
  output of the elementwise ops that follow the layer (ReLU, Tanh, dropout, ...), or its
  **pre-activation** (``"pre"``), the layer's output itself.
- A conv filter: a norm over the positions of its output map, named by ``conv_activation``:
  ``"l2-post"`` (default), the L2 norm of the post-activation map, or ``"l1-pre"``, the L1 norm of
  the pre-activation map.
- The pre-activation is what the layer outputs, followed by an eval-mode BatchNorm when one reads
  that output alone: the same rule by which the weight graph folds a BatchNorm into the layer it
  follows, so the pre-activation is what the nonlinearity receives.
- The post-activation is the output of the chain of single-use elementwise ops after the
  pre-activation (activations, dropout, arithmetic with numbers), which must hold a nonlinearity.
  Where there is none (the output is added to a skip before the ReLU, as in a ResNet block; two
  Linear layers with nothing between them; pooling before the ReLU) the unit has no post-activation
  of its own, and netmod refuses, naming the layer and the alternative (``"l1-pre"`` / ``"pre"``).

This module imports torch only inside its functions, so ``import netmod`` stays torch-free. Where each
unit is read is decided by :func:`netmod.tracing.activation_reader` on the trace of
:func:`netmod.tracing.trace_network` (the one tracer), which replays the traced forward node by node.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass, field
from typing import Any

import igraph as ig
import numpy as np

from ._validate import check_choice, check_int, check_labels, check_seed, check_threads
from .results import frozen_array, to_plain, versions

__all__ = ["ActivationComparison", "compare_activations", "from_activations"]

STATISTICS = ("spearman", "pearson")
CONV_ACTIVATIONS = ("l2-post", "l1-pre")
LINEAR_ACTIVATIONS = ("post", "pre")
DEFAULT_BATCH_SIZE = 512
DEFAULT_MEMORY_BUDGET = 1 << 28  # 256 MiB of activations held at once (Spearman)
_RANK_ROWS_BYTES = 1 << 23  # rows of examples ranked at once (their sort temporaries are a few times this)

# --- the data: batches of model inputs --------------------------------------------------------------


def _is_loader(data: Any) -> bool:
    try:
        from torch.utils.data import DataLoader
    except ImportError:  # pragma: no cover - torch is imported by the caller first
        return False
    return isinstance(data, DataLoader)


def _images(data: Any) -> Any:
    """The inputs of an (images, labels) pair, a netmod Dataset, an array or a tensor."""
    import torch

    if hasattr(data, "images") and hasattr(data, "labels"):
        return data.images
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise TypeError(f"data must be (images, labels), an array, a tensor or a torch DataLoader, got a "
                            f"{type(data).__name__} of length {len(data)}")
        data = data[0]
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data
    raise TypeError(f"data must be (images, labels), an array, a tensor or a torch DataLoader, got "
                    f"{type(data).__name__}")


def _as_input(x: Any, dtype: Any, device: Any) -> Any:
    """A batch as the model's input: uint8 scaled by 1/255, floats cast to the model's dtype."""
    import torch

    t = torch.tensor(x) if isinstance(x, np.ndarray) else x  # a copy: read-only arrays stay untouched
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"data batches must be tensors or arrays, got {type(x).__name__}")
    if t.dtype == torch.uint8:
        t = t.to(dtype) / 255.0
    elif t.is_floating_point():
        t = t.to(dtype)
    else:
        raise TypeError(f"data images must be uint8 (scaled by 1/255) or floating (used as they are), got {t.dtype}")
    if t.dim() < 2:
        raise ValueError(f"data must be a batch of examples (N, ...), got shape {tuple(t.shape)}")
    return t.to(device)


def _batch_source(data: Any, batch_size: int | None):
    """A function returning an iterator over the raw batches of ``data``."""
    if _is_loader(data):
        if batch_size is not None:
            raise ValueError(f"batch_size must be None for a DataLoader (its own batches are used), got {batch_size}")

        def loader_batches():
            for item in data:
                if isinstance(item, (tuple, list)):
                    if not item:
                        raise ValueError("data's DataLoader yielded an empty batch tuple")
                    item = item[0]
                elif isinstance(item, dict):
                    raise TypeError("data's DataLoader must yield tensors or (inputs, labels) pairs, got a dict")
                yield item

        return loader_batches
    images = _images(data)
    n = images.shape[0] if images.ndim else 0
    if n == 0:
        raise ValueError("data must hold at least one example, got 0")
    size = DEFAULT_BATCH_SIZE if batch_size is None else check_int(batch_size, "batch_size", 1)
    return lambda: (images[a:a + size] for a in range(0, n, size))


# --- accumulating correlations ------------------------------------------------------------------------


class _Moments:
    """Streaming means and co-moments (Chan et al.'s pairwise update), float64, units^2 memory."""

    def __init__(self, n_units: int):
        self.n = 0
        self.mean = np.zeros(n_units)
        self.m2 = np.zeros((n_units, n_units))

    def add(self, a: np.ndarray) -> None:
        m = a.shape[0]
        mean = a.mean(axis=0)
        d = a - mean
        m2 = d.T @ d
        if self.n == 0:
            self.n, self.mean, self.m2 = m, mean, m2
            return
        delta = mean - self.mean
        total = self.n + m
        self.m2 += m2
        self.m2 += np.outer(delta, delta) * (self.n * m / total)
        self.mean += delta * (m / total)
        self.n = total

    def comoments(self) -> np.ndarray:
        return self.m2


class _Store:
    """Each unit's activations over all examples, in blocks of examples; in memory, or in a temporary file
    once they pass ``budget`` bytes. A block is kept as (units, examples), so the rows of a set of units are
    contiguous within every block: ranking reads one range of each block."""

    def __init__(self, n_units: int, budget: int, spill_dir: Any):
        self.n_units, self.budget, self.spill_dir = n_units, budget, spill_dir
        self.pending: list = []
        self.pending_bytes = 0
        self.blocks: list = []  # in memory: arrays (units, m); on disk: (offset, m)
        self.file = None
        self.n = 0

    def add(self, a: np.ndarray) -> None:
        self.pending.append(a)
        self.pending_bytes += a.nbytes
        self.n += a.shape[0]
        if self.pending_bytes >= self.budget // 2:
            self._flush()

    def _block(self) -> np.ndarray:
        """The pending batches as one (units, examples) block; they are let go as they are copied."""
        block = np.empty((self.n_units, sum(a.shape[0] for a in self.pending)))
        at = 0
        while self.pending:
            a = self.pending.pop(0)
            block[:, at:at + a.shape[0]] = a.T
            at += a.shape[0]
        self.pending_bytes = 0
        return block

    def _flush(self) -> None:
        if not self.pending:
            return
        block = self._block()
        if self.file is None:
            self.file = tempfile.TemporaryFile(dir=self.spill_dir)
        offset = self.file.seek(0, 2)
        self.file.write(block.data)
        self.blocks.append((offset, block.shape[1]))

    def finish(self) -> None:
        if self.file is None:  # everything fits in half the budget: one block in memory
            self.blocks = [self._block()]
        else:
            self._flush()

    @property
    def spilled(self) -> bool:
        return self.file is not None

    def read(self, b: int, a0: int, a1: int) -> np.ndarray:
        """Rows a0:a1 (units) of block b."""
        block = self.blocks[b]
        if self.file is None:
            return block[a0:a1]
        offset, m = block
        out = np.empty((a1 - a0, m))
        self.file.seek(offset + 8 * a0 * m)
        self.file.readinto(memoryview(out).cast("B"))
        return out

    def write(self, b: int, a0: int, rows: np.ndarray) -> None:
        block = self.blocks[b]
        if self.file is None:
            block[a0:a0 + rows.shape[0]] = rows
            return
        offset, m = block
        self.file.seek(offset + 8 * a0 * m)
        self.file.write(np.ascontiguousarray(rows).data)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _centred_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their ranks, as scipy.stats.rankdata's "average") of each row,
    minus their mean (n + 1) / 2. The values are multiples of 1/2, exact in float64."""
    r, n = x.shape
    order = np.argsort(x, axis=1)
    xs = np.take_along_axis(x, order, axis=1)
    starts = np.ones((r, n), dtype=bool)
    starts[:, 1:] = xs[:, 1:] != xs[:, :-1]
    pos = np.broadcast_to(np.arange(n), (r, n))
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
    ends = np.ones((r, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    last = np.minimum.accumulate(np.where(ends, pos, n)[:, ::-1], axis=1)[:, ::-1]
    centred = (first + last - (n - 1)) / 2.0
    out = np.empty((r, n))
    np.put_along_axis(out, order, centred, axis=1)
    return out


def _rank_comoments(store: _Store) -> np.ndarray:
    """Co-moments of the units' ranks, sum_e r_i(e) r_j(e) with centred average ranks, from the store."""
    n, u = store.n, store.n_units
    rows_at_once = max(1, _RANK_ROWS_BYTES // max(1, 8 * n))
    if not store.spilled:
        block = store.blocks[0]
        for r0 in range(0, u, rows_at_once):
            block[r0:r0 + rows_at_once] = _centred_ranks(block[r0:r0 + rows_at_once])
        return block @ block.T
    # Units ranked together: all their examples (c * n * 8 bytes) within half the budget; each block
    # of examples (written at half the budget) is then read whole for its share of the products.
    c = max(1, min(u, store.budget // 2 // max(1, 8 * n)))
    for a0 in range(0, u, c):
        a1 = min(u, a0 + c)
        x = np.empty((a1 - a0, n))
        at = 0
        for b, (_, m) in enumerate(store.blocks):
            x[:, at:at + m] = store.read(b, a0, a1)
            at += m
        for r0 in range(0, a1 - a0, rows_at_once):
            x[r0:r0 + rows_at_once] = _centred_ranks(x[r0:r0 + rows_at_once])
        at = 0
        for b, (_, m) in enumerate(store.blocks):
            store.write(b, a0, x[:, at:at + m])
            at += m
        del x
    total = np.zeros((u, u))
    for b in range(len(store.blocks)):
        block = store.read(b, 0, u)
        total += block @ block.T
        del block
    return total


def _r2(comoments: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """Squared correlations from co-moments; 0 on the diagonal and for constant units."""
    d = np.diag(comoments).copy()
    live = ~constant & (d > 0)
    scale = np.zeros_like(d)
    scale[live] = 1.0 / np.sqrt(d[live])
    r = comoments * scale[:, None]
    r *= scale[None, :]
    np.clip(r, -1.0, 1.0, out=r)
    r2 = np.square(r, out=r)
    np.fill_diagonal(r2, 0.0)
    r2[np.isnan(r2)] = 0.0
    return r2


def _activation_graph(r2: np.ndarray, reader: Any, attributes: dict) -> ig.Graph:
    u = r2.shape[0]
    iu, ju = np.triu_indices(u, 1)
    w = r2[iu, ju]
    keep = w > 0
    # A list of (source, target) tuples: igraph takes it about ten times faster than a list of lists.
    g = ig.Graph(n=u, edges=list(zip(iu[keep].tolist(), ju[keep].tolist())), directed=False)
    del iu, ju
    g.es["weight"] = w[keep].tolist()
    sizes = list(reader.sizes)
    g.vs["layer"] = np.repeat(reader.layers, sizes).tolist()
    g.vs["layer_name"] = np.repeat(np.asarray(reader.names, dtype=object), sizes).tolist()
    g.vs["unit"] = np.concatenate([np.arange(s) for s in sizes]).tolist()
    g.vs["kind"] = np.repeat(np.asarray(reader.kinds, dtype=object), sizes).tolist()
    for k, v in attributes.items():
        g[k] = v
    return g


def from_activations(
    model: Any,
    data: Any,
    *,
    statistic: str = "spearman",
    conv_activation: str = "l2-post",
    linear_activation: str = "post",
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    spill_dir: Any = None,
) -> ig.Graph:
    """The activation graph of a torch network: hidden units joined by the squared correlation of their activations.

    The nodes are the network's hidden units: the output units of every parametrised layer (a Linear
    layer's out-features, a conv layer's filters) but those of the output layers (the layers whose
    output reaches the model's output through parameter-free ops only: the last Linear layer of an
    MLP); no input units. Layers and units are those of :func:`netmod.from_torch` (the same tracer),
    in execution order. Each unit has one activation per example (see the module docstring for the
    exact definitions): a Linear unit's post-activation (``linear_activation="post"``) or
    pre-activation (``"pre"``); a conv filter's L2 norm over positions of its post-activation map
    (``conv_activation="l2-post"``) or L1 norm of its pre-activation map (``"l1-pre"``), where the
    pre-activation includes an eval-mode BatchNorm that reads the layer's output alone. A unit
    without a post-activation of its own (its output is added to a skip before the ReLU) is refused
    for the "post" choices, with the layer named.

    The edge weight between two units is the square of the Spearman rank correlation (ties as
    average ranks, as ``scipy.stats.spearmanr``) or of the Pearson correlation of their activations
    across all examples; the diagonal is 0. A unit whose activation is the same on every example
    (a dead ReLU, a pruned-away unit) has no correlation: it stays a node without edges, listed in
    the graph attribute ``zero_variance``, and clustering gives it label -1.

    The model runs in eval mode under ``torch.no_grad()``, batch by batch, holding
    :data:`netmod.tracing.TORCH_LOCK` (no torch.fx trace may run meanwhile in another thread).
    Everything is accumulated in float64. Memory: Pearson streams (co-moments, units^2 floats);
    Spearman needs every unit's ranks over all examples, so the activations are kept in memory up
    to ``memory_budget`` bytes and beyond it written to a temporary file, then ranked a group of
    units at a time and multiplied a block of examples at a time: RAM is about units^2 floats plus
    ``memory_budget``, whatever the number of examples (the file takes 8 * examples * units bytes).

    Parameters
    ----------
    model : torch.nn.Module
        Any network :func:`netmod.from_torch` takes, with at least one hidden layer.
    data : (images, labels), ndarray, torch.Tensor, netmod.datasets.Dataset or torch DataLoader
        The examples (labels are not used). uint8 images are scaled by 1/255, floating ones used as
        they are (cast to the model's dtype). When the model's first layer is a Linear layer whose
        ``in_features`` is the size of an example, examples are flattened (MNIST images (N, 28, 28)
        into (N, 784)), as netmod's training does; anything else is passed as it is. A DataLoader
        yields tensors or (inputs, labels) pairs.
    statistic : {"spearman", "pearson"}, default "spearman"
    conv_activation : {"l2-post", "l1-pre"}, default "l2-post"
    linear_activation : {"post", "pre"}, default "post"
    batch_size : int, optional
        Examples per forward pass (default 512). Must be None for a DataLoader (its batches are used).
    memory_budget : int, default 2**28 (256 MiB)
        Bytes of activations held in memory at once (Spearman); more are spilled to a temporary file.
    spill_dir : path, optional
        Folder of that temporary file (default: the system's temporary folder).

    Returns
    -------
    igraph.Graph
        One vertex per hidden unit, with attributes ``layer`` (the layer's index in
        :func:`netmod.from_torch`'s graph of the model, input = 0), ``layer_name`` (module path),
        ``unit`` and ``kind`` ("linear", "conv2d", ...); edge attribute ``weight`` (r^2, edges
        with r^2 > 0 only); graph attributes ``statistic``, ``conv_activation``,
        ``linear_activation``, ``n_examples``, ``zero_variance`` (vertex ids of the constant
        units), ``activation_layers`` (the hidden layers' names) and ``spilled`` (whether the
        activations went to a temporary file).

    Raises
    ------
    TypeError
        For a model that is not a torch module, or data of the wrong kind or dtype.
    ValueError
        As :func:`netmod.from_torch` for a model it cannot trace; for a model without hidden
        layers, a unit without a post-activation of its own under a "post" choice, dropout
        applied in eval mode, fewer than 2 examples, non-finite activations, and bad settings.

    Examples
    --------
    >>> import numpy as np, torch, netmod
    >>> from netmod.torch_models import keras_like_mlp
    >>> model = keras_like_mlp([20, 8, 6, 3], seed=0)
    >>> x = np.random.default_rng(0).random((200, 20), dtype=np.float32)
    >>> g = netmod.from_activations(model, x)
    >>> g.vcount(), g["activation_layers"], g["statistic"], g["n_examples"]
    (14, ['0', '2'], 'spearman', 200)
    >>> bool(max(g.es["weight"]) <= 1.0)
    True
    >>> netmod.spectral_clustering(g, n_clusters=2).labels.shape
    (14,)
    """
    import torch

    from .tracing import TORCH_LOCK, activation_reader

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    statistic = check_choice(statistic, "statistic", STATISTICS)
    conv_activation = check_choice(conv_activation, "conv_activation", CONV_ACTIVATIONS)
    linear_activation = check_choice(linear_activation, "linear_activation", LINEAR_ACTIVATIONS)
    budget = check_int(memory_budget, "memory_budget", 1)
    batches = _batch_source(data, batch_size)
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")

    # The lock for the whole run: torch.fx patches Module.__call__ process-wide while it traces, so no
    # trace may run in another thread while this one runs modules (and the other way round).
    with TORCH_LOCK, torch.no_grad():
        it = iter(batches())
        first = next(it, None)
        if first is None:
            raise ValueError("data must hold at least one example, got an empty DataLoader")
        first = _as_input(first, dtype, device)
        reader = activation_reader(model, example_input=first[:2], conv_activation=conv_activation,
                                   linear_activation=linear_activation)
        n_units = reader.n_units
        lo, hi = np.full(n_units, np.inf), np.full(n_units, -np.inf)
        acc = _Moments(n_units) if statistic == "pearson" else _Store(n_units, budget, spill_dir)
        try:
            with reader.eval_mode():
                batch = first
                while batch is not None:
                    if batch.shape[0]:
                        a = reader.read(batch)
                        np.minimum(lo, a.min(axis=0), out=lo)
                        np.maximum(hi, a.max(axis=0), out=hi)
                        acc.add(a)
                        del a
                    nxt = next(it, None)
                    batch = None if nxt is None else _as_input(nxt, dtype, device)
            n = acc.n
            if n < 2:
                raise ValueError(f"data must hold at least 2 examples (correlations across examples), got {n}")
            if statistic == "pearson":
                comoments, spilled = acc.comoments(), False
            else:
                acc.finish()
                comoments, spilled = _rank_comoments(acc), acc.spilled
        finally:
            if statistic == "spearman":
                acc.close()
    constant = ~(hi > lo)
    r2 = _r2(comoments, constant)
    del comoments
    attributes = {
        "statistic": statistic, "conv_activation": conv_activation, "linear_activation": linear_activation,
        "n_examples": int(n), "zero_variance": np.flatnonzero(constant).tolist(),
        "activation_layers": list(reader.names), "spilled": bool(spilled),
    }
    return _activation_graph(r2, reader, attributes)


# --- activation vs weight partitions ---------------------------------------------------------------


@dataclass(frozen=True)
class ActivationComparison:
    """An activation graph's partition beside a weight partition of the same units.

    Attributes
    ----------
    nmi : float
        Normalised mutual information (arithmetic normalisation, as igraph's and scikit-learn's
        default) between the activation and the weight labels of the compared units.
    nmi_p : float
        One-sided p-value of ``nmi`` against ``n_permutations`` random permutations of the weight
        labels among the compared units: (#{null >= nmi} + 1) / (n + 1).
    nmi_null : ndarray of float64, shape (n_permutations,)
    transfer_ncut : float
        n-cut of the activation graph (restricted to the compared units) under the weight labels.
    activation_ncut : float
        n-cut of the same graph under the activation labels: what the weight partition is up against.
    within_r2, between_r2 : float
        Mean edge weight (r^2) over pairs of compared units in the same weight cluster, and over
        pairs in different weight clusters (nan when there is no such pair).
    n_units : int
        Compared units: hidden units of the activation graph with edges and a weight label >= 0.
    n_clusters_activation, n_clusters_weights : int
        Clusters of each partition among the compared units.
    activation_labels, weight_labels : ndarray of int64, shape (n_nodes,)
        Both partitions on the activation graph's nodes (-1 for units not compared).
    n_permutations, seed : int
    graph_info : dict
        How the activation graph was made (statistic, conv_activation, linear_activation, n_examples).
    versions : dict
    """

    nmi: float
    nmi_p: float
    nmi_null: np.ndarray
    transfer_ncut: float
    activation_ncut: float
    within_r2: float
    between_r2: float
    n_units: int
    n_clusters_activation: int
    n_clusters_weights: int
    activation_labels: np.ndarray
    weight_labels: np.ndarray
    n_permutations: int
    seed: int
    graph_info: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nmi_null", frozen_array(self.nmi_null, np.float64))
        object.__setattr__(self, "activation_labels", frozen_array(self.activation_labels, np.int64))
        object.__setattr__(self, "weight_labels", frozen_array(self.weight_labels, np.int64))

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version of the result."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        return (f"ActivationComparison(nmi={self.nmi:.4f}, nmi_p={self.nmi_p:.4g}, transfer_ncut="
                f"{self.transfer_ncut:.4f}, activation_ncut={self.activation_ncut:.4f}, within_r2="
                f"{self.within_r2:.4g}, between_r2={self.between_r2:.4g}, n_units={self.n_units})")


def _partition_labels(labels: Any, n: int, name: str) -> np.ndarray:
    a = labels.labels if hasattr(labels, "labels") and hasattr(labels, "n_clusters") else labels
    if isinstance(a, (list, tuple)) or isinstance(a, np.ndarray):
        return check_labels(a, n)
    raise TypeError(f"{name} must be a netmod Partition or an integer label array, got {type(labels).__name__}")


def _vertex_keys(g: ig.Graph, name: str) -> list:
    """(layer name, unit) of each vertex of a graph with layers."""
    attrs = set(g.vs.attributes())
    if "unit" not in attrs:
        raise ValueError(f"{name} must have a 'unit' vertex attribute (a graph made by from_torch or from_layers)")
    if "layer_name" in attrs:
        names = g.vs["layer_name"]
    elif "layer" in attrs and "layer_names" in g.attributes():
        table = list(g["layer_names"])
        names = [table[l] for l in g.vs["layer"]]
    else:
        raise ValueError(f"{name} must name each vertex's layer ('layer_name' vertex attribute, or 'layer' and "
                         "the graph attribute 'layer_names'), as from_torch's graphs do")
    return list(zip(names, g.vs["unit"]))


def _dense_weights(g: ig.Graph) -> np.ndarray:
    if g.ecount() == 0:
        return np.zeros((g.vcount(), g.vcount()))
    a = g.get_adjacency_sparse(attribute="weight" if "weight" in g.es.attributes() else None)
    return np.asarray(a.toarray(), dtype=np.float64)


def _nmi(a: np.ndarray, b: np.ndarray) -> float:
    return float(ig.compare_communities(a.tolist(), b.tolist(), method="nmi"))


def _within_between(w: np.ndarray, labels: np.ndarray) -> tuple:
    """Mean of w over pairs i < j in the same cluster and over pairs in different clusters."""
    n = labels.size
    k = int(labels.max()) + 1 if n else 0
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    sizes = onehot.sum(axis=0)
    block = onehot.T @ w @ onehot  # (k, k) sums of w between clusters (both orders)
    within_sum = np.trace(block) / 2.0  # w has a zero diagonal: each pair counted twice
    total = w.sum() / 2.0
    within_pairs = float((sizes * (sizes - 1) / 2).sum())
    between_pairs = n * (n - 1) / 2 - within_pairs
    within = within_sum / within_pairs if within_pairs else math.nan
    between = (total - within_sum) / between_pairs if between_pairs else math.nan
    return float(within), float(between)


def compare_activations(
    graph: Any,
    *,
    weights: Any,
    weight_labels: Any = None,
    labels: Any = None,
    n_clusters: int = 12,
    n_permutations: int = 100,
    seed: int | None = 0,
    n_threads: int | None = None,
) -> ActivationComparison:
    """Compare an activation graph's partition with the weight graph's partition of the same units.

    The weight partition is restricted to the activation graph's hidden units (matched by layer
    name and unit), and both are compared on the units with a weight label and edges in the
    activation graph: the NMI between them with a permutation p-value, the n-cut of the activation
    graph under the weight labels ("transfer n-cut", beside the n-cut under its own labels), and the
    mean r^2 of the activation graph within weight clusters vs between them (over pairs of compared
    units in different clusters).

    Parameters
    ----------
    graph : igraph.Graph
        An activation graph (:func:`from_activations`).
    weights : igraph.Graph, torch.nn.Module, netmod Partition or array of int
        The weight side: a weight graph of the same model (:func:`netmod.from_torch`, whose
        vertices name their layer and unit), the model itself (its from_torch graph), or labels
        already given per node of `graph`.
    weight_labels : netmod Partition or array of int, optional
        Labels of the weight graph's nodes; default ``spectral_clustering(weights, n_clusters=n_clusters,
        seed=seed)``. Only with a weight graph or model.
    labels : netmod Partition or array of int, optional
        Labels of `graph`'s nodes; default its spectral clustering with ``n_clusters`` and ``seed``.
    n_clusters : int, default 12
        Clusters of the partitions computed here.
    n_permutations : int, default 100
    seed : int or None, default 0
        Seeds the clusterings and the permutations (None draws one, recorded).
    n_threads : int or None
        Threads of the spectral clusterings.

    Returns
    -------
    ActivationComparison

    Raises
    ------
    TypeError
        For inputs of the wrong kind.
    ValueError
        If no unit of `graph` is in the weight graph, labels have the wrong length, or fewer than
        2 units can be compared.

    Examples
    --------
    >>> import numpy as np, torch, netmod
    >>> from netmod.torch_models import keras_like_mlp
    >>> model = keras_like_mlp([20, 8, 6, 3], seed=0)
    >>> x = np.random.default_rng(0).random((200, 20), dtype=np.float32)
    >>> g = netmod.from_activations(model, x)
    >>> cmp = netmod.compare_activations(g, weights=model, n_clusters=2, n_permutations=20)
    >>> g["zero_variance"]  # a ReLU dead on every example: no edges, left out
    [8]
    >>> cmp.n_units, cmp.nmi_null.shape, 0 < cmp.nmi_p <= 1
    (13, (20,), True)
    """
    from .graphs import from_torch, is_torch_module
    from .nulls import empirical_p
    from .spectral import ncut, spectral_clustering

    if not isinstance(graph, ig.Graph):
        raise TypeError(f"graph must be an igraph.Graph made by from_activations, got {type(graph).__name__}")
    k = check_int(n_clusters, "n_clusters", 2)
    n_perm = check_int(n_permutations, "n_permutations", 1)
    seed = check_seed(seed)
    threads = check_threads(n_threads)
    n = graph.vcount()
    act_keys = _vertex_keys(graph, "graph")

    if isinstance(weights, ig.Graph) or is_torch_module(weights):
        wg = weights if isinstance(weights, ig.Graph) else from_torch(weights)
        if weight_labels is None:
            wl_all = spectral_clustering(wg, n_clusters=k, seed=seed, n_threads=threads).labels
        else:
            wl_all = _partition_labels(weight_labels, wg.vcount(), "weight_labels")
        index = {key: i for i, key in enumerate(_vertex_keys(wg, "weights"))}
        found = np.array([index.get(key, -1) for key in act_keys], dtype=np.int64)
        if not (found >= 0).any():
            raise ValueError(
                f"no unit of graph is in the weight graph: graph's layers are "
                f"{sorted({name for name, _ in act_keys})}, the weight graph's {sorted({nm for nm, _ in index})}")
        wl = np.where(found >= 0, wl_all[np.maximum(found, 0)], -1)
    elif hasattr(weights, "labels") or isinstance(weights, (np.ndarray, list, tuple)):
        if weight_labels is not None:
            raise ValueError("weight_labels must be None when weights are labels of graph's nodes")
        wl = _partition_labels(weights, n, "weights")
    else:
        raise TypeError(f"weights must be a weight graph, a torch model, a Partition or labels, got "
                        f"{type(weights).__name__}")

    if labels is None:
        al = spectral_clustering(graph, n_clusters=k, seed=seed, n_threads=threads).labels
    else:
        al = _partition_labels(labels, n, "labels")
    w = _dense_weights(graph)
    live = w.any(axis=1)
    kept = live & (wl >= 0) & (al >= 0)
    if kept.sum() < 2:
        raise ValueError(f"at least 2 units must be compared (with edges in graph and labels >= 0 on both sides), "
                         f"got {int(kept.sum())}")
    a, b = check_labels(al[kept], int(kept.sum())), check_labels(wl[kept], int(kept.sum()))
    sub = w[np.ix_(kept, kept)]
    nmi = _nmi(a, b)
    rng = np.random.default_rng(seed)
    null = np.array([_nmi(a, rng.permutation(b)) for _ in range(n_perm)])

    within, between = _within_between(sub, b)
    info = {key: graph[key] for key in ("statistic", "conv_activation", "linear_activation", "n_examples")
            if key in graph.attributes()}
    return ActivationComparison(
        nmi=nmi, nmi_p=empirical_p(nmi, null, alternative="greater"), nmi_null=null,
        transfer_ncut=ncut(sub, b), activation_ncut=ncut(sub, a), within_r2=within, between_r2=between,
        n_units=int(kept.sum()), n_clusters_activation=int(a.max()) + 1, n_clusters_weights=int(b.max()) + 1,
        activation_labels=np.where(kept, al, -1), weight_labels=np.where(kept, wl, -1), n_permutations=n_perm,
        seed=seed, graph_info=info,
    )
