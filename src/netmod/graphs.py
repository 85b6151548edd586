"""Graph inputs: validate anything netmod accepts and hand the kernel arrays.

Three native forms exist. A *layered* graph is a chain of weight matrices
(MLP layers, shape (in, out), signed; edge weight |w|): the kernel multiplies
by the blocks directly. A *block* graph generalises it to weight blocks
between any pairs of layers (src < dst: a CNN's filter graph with a residual
skip, say), still multiplied block by block. Every other graph becomes a
symmetric CSR matrix (int64 indices, float64 non-negative weights).

A graph made by :func:`from_layers` or :func:`from_torch` is an ordinary
``igraph.Graph`` that also carries its signed layer weights (graph attribute
``layer_weights``); one made by :func:`from_blocks` carries its blocks and
their pairs (``layer_blocks``, ``layer_pairs``; a chain given as pairs is a
:func:`from_layers` graph). Those are used only while they are exactly what the
graph's edges say: every call that reads such a graph checks, in the kernel,
that its edges are the non-zero entries of the stored blocks in order, with
weights ``|w|`` equal to the last bit. A graph edited since (weights
reassigned, edges rewired, added or removed, vertices permuted) is read from
its edges instead, so it gives the edited answer, never the old one.
"""

from __future__ import annotations

import ctypes
import numbers
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import igraph as ig
import numpy as np
import scipy.sparse as sp

from ._native import core as _core
from ._validate import check_choice, check_int

__all__ = ["KERNEL_NORMS", "from_blocks", "from_layers", "from_torch", "kernel_norms", "layer_weights", "to_igraph"]

# Relative tolerance under which a matrix counts as symmetric (and is then
# symmetrised exactly): float round-off of A + A.T style constructions.
_SYMMETRY_RTOL = 1e-12


@dataclass(frozen=True)
class LayeredInput:
    """Chain of signed (in, out) float64 C-contiguous weight matrices."""

    weights: tuple

    @property
    def n_nodes(self) -> int:
        return int(self.weights[0].shape[0] + sum(w.shape[1] for w in self.weights))

    @property
    def sizes(self) -> list:
        return [int(self.weights[0].shape[0])] + [int(w.shape[1]) for w in self.weights]


@dataclass(frozen=True)
class BlockInput:
    """Signed weight blocks between pairs of layers.

    ``sizes``: units per layer (ints >= 0); ``pairs``: (src, dst) per block,
    src < dst, no pair twice; ``blocks``: float64 C-contiguous read-only
    arrays, block b of shape (sizes[src], sizes[dst]). Made by
    :func:`check_blocks` (validating) or :func:`block_input` (trusted).
    """

    sizes: tuple
    pairs: tuple
    blocks: tuple

    @property
    def n_nodes(self) -> int:
        return int(sum(self.sizes))

    @property
    def offsets(self) -> np.ndarray:
        """First node of each layer (int64)."""
        return np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)[:-1]]).astype(np.int64)

    def native_args(self) -> tuple:
        """(sizes, src, dst, blocks) as the kernel's *_blocks functions take them."""
        pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        return (np.asarray(self.sizes, dtype=np.int64), np.ascontiguousarray(pairs[:, 0]),
                np.ascontiguousarray(pairs[:, 1]), list(self.blocks))


@dataclass(frozen=True)
class CsrInput:
    """Symmetric CSR adjacency, no self-loops, finite non-negative weights."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.size - 1)


NativeGraph = LayeredInput | BlockInput | CsrInput


def is_torch_module(obj: Any) -> bool:
    """Whether ``obj`` is a torch.nn.Module (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def check_weights(weights: Any, name: str) -> tuple:
    """A chain of weight matrices as float64 C-contiguous arrays, shapes checked."""
    if isinstance(weights, (np.ndarray, str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(f"{name} must be a sequence of 2-D arrays, got {type(weights).__name__}")
    if len(weights) == 0:
        raise ValueError(f"{name} must hold at least one weight matrix, got none")
    out = []
    for i, w in enumerate(weights):
        try:
            a = np.asarray(w)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{name}[{i}] must be a 2-D array, got a ragged sequence: {exc}") from None
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise TypeError(f"{name}[{i}] must be a numeric array, got dtype {a.dtype}")
        if np.iscomplexobj(a):
            raise TypeError(f"{name}[{i}] must be real, got dtype {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"{name}[{i}] must be 2-D (in, out), got shape {a.shape}")
        a = np.ascontiguousarray(a, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{name}[{i}] must be finite, got NaN or inf")
        if i > 0 and out[-1].shape[1] != a.shape[0]:
            raise ValueError(
                f"{name}[{i}] has {a.shape[0]} inputs but {name}[{i - 1}] has "
                f"{out[-1].shape[1]} outputs"
            )
        out.append(a)
    return tuple(out)


def _read_only(a: np.ndarray) -> np.ndarray:
    c = np.array(a, dtype=np.float64, order="C", copy=True)
    c.setflags(write=False)
    return c


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a`` as a float64 C-contiguous read-only array; copied only if it is not one already."""
    if a.dtype == np.float64 and a.flags.c_contiguous and not a.flags.writeable:
        return a
    return _read_only(a)


def _is_chain(pairs: tuple, n_layers: int) -> bool:
    return pairs == tuple((l, l + 1) for l in range(n_layers - 1))


def block_input(sizes: Sequence[int], pairs: Sequence[Sequence[int]], blocks: Sequence[np.ndarray]) -> BlockInput:
    """A BlockInput of already valid parts (the kernel's own outputs): no checks,
    arrays made read-only in place when they are fresh float64 C arrays."""
    out = []
    for b in blocks:
        a = np.ascontiguousarray(b, dtype=np.float64)
        if a.flags.writeable and a.flags.owndata:
            a.setflags(write=False)
        out.append(_frozen(a))
    return BlockInput(tuple(int(s) for s in sizes), tuple((int(s), int(d)) for s, d in pairs), tuple(out))


def check_blocks(blocks: Any, sizes: Any, pairs: Any, name: str = "blocks") -> BlockInput:
    """Blocks between pairs of layers, validated: ``sizes`` ints >= 0 (at least
    two layers), ``pairs`` one (src, dst) per block with 0 <= src < dst <
    len(sizes) and no pair twice, block b real, finite, of shape
    (sizes[src], sizes[dst])."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise TypeError(f"sizes must be a sequence of integers, got {type(sizes).__name__}")
    sizes_out = []
    for l, s in enumerate(sizes):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral):
            raise TypeError(f"sizes[{l}] must be an integer, got {type(s).__name__}")
        if s < 0:
            raise ValueError(f"sizes[{l}] must be >= 0, got {int(s)}")
        sizes_out.append(int(s))
    if len(sizes_out) < 2:
        raise ValueError(f"sizes must have at least two layers, got {len(sizes_out)}")
    if isinstance(blocks, (np.ndarray, str, bytes)) or not isinstance(blocks, Sequence):
        raise TypeError(f"{name} must be a sequence of 2-D arrays, got {type(blocks).__name__}")
    if len(blocks) == 0:
        raise ValueError(f"{name} must hold at least one block, got none")
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (Sequence, np.ndarray)):
        raise TypeError(f"pairs must be a sequence of (src, dst) layer pairs, got {type(pairs).__name__}")
    if len(pairs) != len(blocks):
        raise ValueError(f"pairs must have one (src, dst) per block ({len(blocks)}), got {len(pairs)}")
    pairs_out, seen = [], {}
    for b, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (Sequence, np.ndarray)) or len(pair) != 2:
            raise TypeError(f"pairs[{b}] must be a (src, dst) pair of layer indices, got {pair!r}")
        if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in pair):
            raise TypeError(f"pairs[{b}] must hold two integers, got {pair!r}")
        s, d = int(pair[0]), int(pair[1])
        if not 0 <= s < len(sizes_out) or not 0 <= d < len(sizes_out):
            raise ValueError(f"pairs[{b}] must name layers in [0, {len(sizes_out)}), got ({s}, {d})")
        if s >= d:
            raise ValueError(f"pairs[{b}] must have src < dst, got ({s}, {d})")
        if (s, d) in seen:
            raise ValueError(f"pairs[{b}] repeats the pair ({s}, {d}) of pairs[{seen[(s, d)]}]")
        seen[(s, d)] = b
        pairs_out.append((s, d))
    out = []
    for b, (w, (s, d)) in enumerate(zip(blocks, pairs_out)):
        where = f"{name}[{b}] (layers {s} -> {d})"
        try:
            a = np.asarray(w)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{where} must be a 2-D array, got a ragged sequence: {exc}") from None
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise TypeError(f"{where} must be a numeric array, got dtype {a.dtype}")
        if np.iscomplexobj(a):
            raise TypeError(f"{where} must be real, got dtype {a.dtype}")
        want = (sizes_out[s], sizes_out[d])
        if a.shape != want:
            raise ValueError(f"{where} must have shape {want} = (sizes[{s}], sizes[{d}]), got {a.shape}")
        a = _frozen(a)
        if not np.isfinite(a).all():
            raise ValueError(f"{where} must be finite, got NaN or inf")
        out.append(a)
    return BlockInput(tuple(sizes_out), tuple(pairs_out), tuple(out))


KERNEL_NORMS = ("l1", "l2", "induced-l1", "spectral")


def kernel_norms(kernel: Any, norm: str = "l1", *, groups: int = 1, scale: Any = None) -> np.ndarray:
    """The (in, out) edge weights that a convolution kernel gives its filter graph.

    Entry (i, j) is a norm of the kernel slice ``|K[j, i]|`` joining input
    channel i to output channel j (REFERENCE.md 8): the weight matrix of the
    block between two conv layers, as :func:`from_layers` takes it.

    Parameters
    ----------
    kernel : array_like
        A torch-layout kernel (out_channels, in_channels / groups, *spatial),
        e.g. ``conv.weight.detach().numpy()``; 1 to 3 spatial axes.
    norm : {"l1", "l2", "induced-l1", "spectral"}, default "l1"
        "l1": the sum of the slice's absolute values; "l2": its Frobenius norm;
        "induced-l1": numpy's induced matrix 1-norm of a 2-D slice (the
        largest column sum, what the 2021 authors' code computed); "spectral":
        the largest singular value of a 2-D slice. For 1-D slices the induced
        norms are the vector 1- and 2-norms; 3-D slices take only "l1"/"l2".
    groups : int, default 1
        The convolution's groups: output channel j sees only the input
        channels of its group; every other entry is 0.
    scale : array_like, optional
        One factor per output channel that multiplies its kernels before the
        norm (column j of the result is multiplied by ``|scale[j]|``, the
        norms being absolutely homogeneous). A BatchNorm after the
        convolution folds in as ``scale = gamma / sqrt(running_var + eps)``
        (REFERENCE.md 8).

    Returns
    -------
    ndarray
        float64, shape (in_channels, out_channels), non-negative.

    Examples
    --------
    >>> k = np.zeros((2, 1, 3, 3)); k[0, 0, 0, :] = 1.0; k[1, 0, :, 0] = -1.0
    >>> kernel_norms(k, "l1"), kernel_norms(k, "induced-l1")
    (array([[3., 3.]]), array([[1., 3.]]))
    """
    norm = check_choice(norm, "norm", KERNEL_NORMS)
    groups = check_int(groups, "groups", 1)
    k = np.asarray(kernel)
    if k.dtype == object or not (np.issubdtype(k.dtype, np.number) or k.dtype == bool) or np.iscomplexobj(k):
        raise TypeError(f"kernel must be a real numeric array, got dtype {k.dtype}")
    if not 3 <= k.ndim <= 5:
        raise ValueError(f"kernel must be (out, in / groups, *spatial) with 1 to 3 spatial axes, got shape {k.shape}")
    k = np.abs(k.astype(np.float64, copy=False))
    if not np.isfinite(k).all():
        raise ValueError("kernel must be finite, got NaN or inf")
    n_out, n_in_group = k.shape[:2]
    if n_out % groups:
        raise ValueError(f"kernel's {n_out} output channels are not divisible by groups={groups}")
    spatial = k.ndim - 2
    if norm in ("induced-l1", "spectral") and spatial == 3:
        raise ValueError(f"norm {norm!r} is defined for 1-D and 2-D kernel slices, got 3-D ones; use 'l1' or 'l2'")
    flat = k.reshape(n_out, n_in_group, -1)
    if norm == "l1" or (norm == "induced-l1" and spatial == 1):
        per = flat.sum(axis=2)
    elif norm == "l2" or (norm == "spectral" and spatial == 1):
        per = np.sqrt(np.square(flat).sum(axis=2))
    elif norm == "induced-l1":
        per = k.sum(axis=2).max(axis=2)  # column sums over the rows of each slice, then their largest
    else:
        per = np.linalg.norm(k, ord=2, axis=(2, 3))
    if scale is not None:
        factor = np.asarray(scale)
        if factor.dtype == object or not np.issubdtype(factor.dtype, np.number) or np.iscomplexobj(factor):
            raise TypeError(f"scale must be a real numeric array, got dtype {factor.dtype}")
        if factor.shape != (n_out,):
            raise ValueError(f"scale must hold one factor per output channel ({n_out}), got shape {factor.shape}")
        factor = np.abs(factor.astype(np.float64))
        if not np.isfinite(factor).all():
            raise ValueError("scale must be finite, got NaN or inf")
        per = per * factor[:, None]
    out_per_group = n_out // groups
    blocks = np.zeros((n_in_group * groups, n_out))
    for g in range(groups):
        cols = slice(g * out_per_group, (g + 1) * out_per_group)
        blocks[g * n_in_group:(g + 1) * n_in_group, cols] = per[cols].T
    return blocks


def _edge_list(edges: list) -> list:
    """(m, 2) integer arrays -> one list of (source, target) tuples: about ten times faster
    to make than ``tolist()`` of the stacked array, and igraph takes it the same way."""
    both = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=np.int64)
    return list(zip(both[:, 0].tolist(), both[:, 1].tolist()))


def from_layers(weights: Sequence[Any], *, names: Sequence[str] | None = None) -> ig.Graph:
    """Build the neuron graph of a chain of weight matrices.

    Parameters
    ----------
    weights : sequence of array_like, shapes (n_0, n_1), (n_1, n_2), ...
        Weight matrix of each layer as (in, out), signed (PyTorch's
        ``Linear.weight`` is (out, in): pass its transpose).
    names : sequence of str, optional
        A name for every layer of units, inputs first (``len(weights) + 1``
        names; :func:`from_torch` passes "input" and the module paths).

    Returns
    -------
    igraph.Graph
        Undirected; one vertex per unit (layer 0 first, units in index order)
        with vertex attributes ``layer`` and ``unit``; an edge for every
        non-zero weight (layer by layer, row-major) with attribute ``weight``
        = |w|; graph attributes ``layer_sizes``, ``layer_names`` and
        ``layer_weights`` (read-only float64 copies of the signed matrices).
        netmod clusters such a graph block by block for as long as its edges
        are exactly those weights (checked on every call); edit the graph and
        it is read from its edges instead.

    Raises
    ------
    TypeError
        If ``weights`` is not a sequence of numeric arrays.
    ValueError
        If a matrix is not 2-D, not finite, consecutive shapes do not chain,
        or ``names`` has the wrong length.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> g = netmod.from_layers([np.ones((3, 2)), -np.ones((2, 1))])
    >>> g.vcount(), g.ecount(), g["layer_sizes"]
    (6, 8, [3, 2, 1])
    """
    ws = check_weights(weights, "weights")
    sizes = [int(ws[0].shape[0])] + [int(w.shape[1]) for w in ws]
    if names is None:
        names = _default_names(len(sizes))
    names = [str(n) for n in names]
    if len(names) != len(sizes):
        raise ValueError(f"names must have one entry per layer of units ({len(sizes)}), got {len(names)}")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    edges, wts = [], []
    for l, w in enumerate(ws):
        i, j = np.nonzero(w)
        edges.append(np.column_stack([i + offsets[l], j + offsets[l + 1]]))
        wts.append(np.abs(w[i, j]))
    g = ig.Graph(n=int(offsets[-1]), edges=_edge_list(edges), directed=False)
    g.es["weight"] = np.concatenate(wts).tolist()
    g.vs["layer"] = np.repeat(np.arange(len(sizes)), sizes).tolist()
    g.vs["unit"] = np.concatenate([np.arange(s) for s in sizes]).tolist()
    g["layer_sizes"] = sizes
    g["layer_names"] = names
    g["layer_weights"] = [_read_only(w) for w in ws]
    return g


# Graph attributes from_layers / from_blocks set themselves.
_LAYER_ATTRIBUTES = ("layer_sizes", "layer_names", "layer_kinds", "layer_pairs", "layer_blocks", "layer_weights")


def from_blocks(
    blocks: Sequence[Any],
    *,
    sizes: Sequence[int],
    pairs: Sequence[Sequence[int]],
    names: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ig.Graph:
    """Build the neuron graph of weight blocks between any pairs of layers.

    The generalisation of :func:`from_layers` to networks whose layers are
    not a chain: a residual skip adds a block from layer 2 to layer 5, say;
    a CNN's filter graph takes one block per convolution
    (:func:`kernel_norms`) between the layers of channels it joins.

    Parameters
    ----------
    blocks : sequence of array_like
        Block b, of shape (sizes[src], sizes[dst]) for ``pairs[b] = (src,
        dst)``, signed: entry (i, j) is the weight from unit i of layer src
        to unit j of layer dst (edge weight |w|).
    sizes : sequence of int
        Units per layer (at least two layers; 0 is allowed), inputs first.
    pairs : sequence of (int, int)
        The layers each block joins, src < dst, no pair twice.
    names : sequence of str, optional
        A name for every layer (default "input", "layer 1", ...).
    kinds : sequence of str, optional
        A kind for every layer (e.g. "input", "conv", "linear"): graph
        attribute ``layer_kinds`` and vertex attribute ``kind``.
    attributes : mapping of str to object, optional
        Extra graph attributes to set (e.g. ``{"kernel_norm": "l1"}``); not
        one of the names set here (``layer_sizes``, ``layer_names``,
        ``layer_kinds``, ``layer_pairs``, ``layer_blocks``, ``layer_weights``).

    Returns
    -------
    igraph.Graph
        Undirected; one vertex per unit (layer 0 first, units in index order)
        with vertex attributes ``layer``, ``unit`` (and ``kind``); an edge for
        every non-zero weight (block by block, row-major) with attribute
        ``weight`` = |w|; graph attributes ``layer_sizes``, ``layer_names``,
        ``layer_pairs`` (list of (src, dst)) and ``layer_blocks`` (read-only
        float64 copies of the signed blocks), plus ``layer_kinds`` and
        ``attributes``. When ``pairs`` is exactly the chain (0, 1), (1, 2),
        ... in order, the graph is the one :func:`from_layers` makes of the
        blocks (``layer_weights``, no ``layer_pairs`` / ``layer_blocks``) plus
        ``kinds`` and ``attributes``, so every MLP code path applies. netmod
        clusters such a graph block by block, and shuffles it block by block
        in :func:`netmod.shuffle_null`, for as long as its edges are exactly
        those blocks (checked on every call); edit it and it is read from its
        edges.

    Raises
    ------
    TypeError
        If ``blocks``, ``sizes``, ``pairs``, ``names``, ``kinds`` or the
        attribute names are of the wrong kind.
    ValueError
        If a block is not finite or not of shape (sizes[src], sizes[dst]), a
        pair has src >= dst, names a layer out of range or repeats, ``names``
        or ``kinds`` has the wrong length, or an attribute name is reserved.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> skip = [np.ones((2, 3)), np.ones((3, 2)), -np.eye(2)]
    >>> g = netmod.from_blocks(skip, sizes=[2, 3, 2], pairs=[(0, 1), (1, 2), (0, 2)])
    >>> g.vcount(), g.ecount(), g["layer_pairs"]
    (7, 14, [(0, 1), (1, 2), (0, 2)])
    """
    native = check_blocks(blocks, sizes, pairs)
    n_layers = len(native.sizes)
    kinds = _per_layer(kinds, "kinds", n_layers)
    extra = {} if attributes is None else attributes
    if not isinstance(extra, Mapping):
        raise TypeError(f"attributes must be a mapping of graph attribute names to values, got {type(extra).__name__}")
    for key in extra:
        if not isinstance(key, str):
            raise TypeError(f"attributes must have str keys, got {type(key).__name__}")
        if key in _LAYER_ATTRIBUTES:
            raise ValueError(f"attributes must not set {key!r}, which from_blocks sets itself")
    if _is_chain(native.pairs, n_layers):
        g = from_layers(list(native.blocks), names=names)
    else:
        names = _per_layer(names, "names", n_layers, default=_default_names(n_layers))
        offsets = native.offsets
        edges, wts = [], []
        for (src, dst), w in zip(native.pairs, native.blocks):
            i, j = np.nonzero(w)
            edges.append(np.column_stack([i + offsets[src], j + offsets[dst]]))
            wts.append(np.abs(w[i, j]))
        g = ig.Graph(n=native.n_nodes, edges=_edge_list(edges), directed=False)
        g.es["weight"] = np.concatenate(wts).tolist()
        g.vs["layer"] = np.repeat(np.arange(n_layers), native.sizes).tolist()
        g.vs["unit"] = np.concatenate([np.arange(s) for s in native.sizes]).tolist()
        g["layer_sizes"] = list(native.sizes)
        g["layer_names"] = names
        g["layer_pairs"] = list(native.pairs)
        g["layer_blocks"] = [_read_only(w) for w in native.blocks]
    if kinds is not None:
        g.vs["kind"] = [kinds[l] for l in g.vs["layer"]]
        g["layer_kinds"] = kinds
    for key, value in extra.items():
        g[key] = value
    return g


def _default_names(n_layers: int) -> list:
    return ["input"] + [f"layer {i}" for i in range(1, n_layers)]


def _per_layer(values: Any, name: str, n_layers: int, default: list | None = None) -> list | None:
    """One string per layer (``default`` when None)."""
    if values is None:
        return default
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of str, one per layer, got {type(values).__name__}")
    out = [str(v) for v in values]
    if len(out) != n_layers:
        raise ValueError(f"{name} must have one entry per layer of units ({n_layers}), got {len(out)}")
    return out


def from_torch(model: Any, *, example_input: Any = None, include: Any = "all", kernel_norm: str = "l1") -> ig.Graph:
    """The unit graph of a PyTorch network: an MLP, a CNN, a residual or branching net.

    The forward pass is traced with torch.fx (:func:`netmod.tracing.trace_network`),
    so every operation is seen. One node per unit of each parametrised layer (a
    Linear layer's out-features, a conv layer's output channels), after the
    input's features or channels; edges join the units of layers that feed each
    other through parameter-free ops (REFERENCE.md 8): activations, dropout,
    pooling and padding keep the channels, ``a + b`` merges channel c of both
    summands (a residual skip gives edges from both layers), ``torch.cat(...,
    dim=1)`` offsets channels, a flatten gives channel c its ``h*w`` columns of
    the next Linear layer, grouped and depthwise convolutions join only the
    channels of a group, an eval-mode BatchNorm folds in per channel. The edge
    weight is ``|w|`` between Linear layers and ``kernel_norm`` of the kernel
    slice ``K[j, i]`` for a convolution. An op netmod cannot place (attention,
    embeddings, a product of two tensors, slicing the channels, data-dependent
    control flow) is refused with an error naming it, never turned into a
    partial graph.

    An MLP's graph is that of :func:`from_layers` (a chain, signed weights);
    any other network's is that of :func:`from_blocks` (blocks between any
    pairs of layers), clustered block by block by the same kernel.

    Parameters
    ----------
    model : torch.nn.Module
    example_input : torch.Tensor, optional
        One input batch, for shape propagation. Needed for a network whose
        first layer is a convolution; by default ``torch.zeros(2,
        in_features)`` of the first Linear layer.
    include : "all", "conv", "linear" or sequence of str, default "all"
        The layers whose units are nodes: all of them and the input, only the
        conv layers (the 2021 CNN graphs: conv filters, conv-to-conv edges),
        only the Linear layers, or those named (``"input"`` and module paths).
        No edge is bridged through a layer left out.
    kernel_norm : {"l1", "l2", "induced-l1", "spectral"}, default "l1"
        The norm of each kernel slice (see :func:`kernel_norms`); "induced-l1"
        (numpy's ``ord=1``, the largest column sum) is what the 2021 authors'
        code computed.

    Returns
    -------
    igraph.Graph
        Vertex attributes ``layer`` (index), ``layer_name`` (its module path,
        or "input"), ``unit`` and ``kind`` ("input", "linear", "conv1d",
        "conv2d", "conv3d"); graph attributes ``layer_sizes``,
        ``layer_names`` ("input" and module paths), ``layer_kinds``, the
        stored blocks, ``kernel_norm``, ``include`` and ``batchnorm`` (where
        each BatchNorm was folded). netmod's results on the graph record its
        ``kernel_norm`` and ``include``.

    Raises
    ------
    TypeError
        If ``model`` is not a torch.nn.Module.
    ValueError
        If the model runs an op netmod cannot place (naming it and where it
        is), calls a layer twice, cannot be traced, or ``include`` selects no
        layer.

    Examples
    --------
    >>> import torch, netmod
    >>> _ = torch.manual_seed(0)
    >>> m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    >>> g = netmod.from_torch(m)
    >>> g.vcount(), g["layer_sizes"], g["layer_names"]
    (9, [4, 3, 2], ['input', '0', '2'])
    >>> cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
    ...                           torch.nn.Conv2d(8, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1))
    >>> g = netmod.from_torch(cnn, example_input=torch.zeros(1, 3, 16, 16), include="conv", kernel_norm="induced-l1")
    >>> g["layer_sizes"], g["layer_kinds"], g["kernel_norm"]
    ([8, 8, 4], ['conv2d', 'conv2d', 'conv2d'], 'induced-l1')
    """
    trace = _trace(model, example_input, include, kernel_norm)
    attributes = {"kernel_norm": trace.kernel_norm, "include": include if isinstance(include, str) else list(include),
                  "batchnorm": list(trace.folded)}
    g = from_blocks(list(trace.blocks), sizes=trace.sizes, pairs=trace.pairs, names=list(trace.names),
                    kinds=list(trace.kinds), attributes=attributes)
    g.vs["layer_name"] = np.repeat(np.asarray(trace.names, dtype=object), trace.sizes).tolist()
    return g


def graph_info(graph: Any) -> dict:
    """How a graph's edge weights were made, for results to record: ``kernel_norm`` and
    ``include`` of a :func:`from_torch` graph (a torch model passed as a graph is traced
    with from_torch's defaults); empty for other graphs."""
    if isinstance(graph, ig.Graph):
        attrs = graph.attributes()
        return {k: graph[k] for k in ("kernel_norm", "include") if k in attrs}
    if is_torch_module(graph):
        return {"kernel_norm": "l1", "include": "all"}
    return {}


def _trace(model: Any, example_input: Any, include: Any, kernel_norm: str):
    from .tracing import trace_network

    return trace_network(model, example_input=example_input, include=include, kernel_norm=kernel_norm)


def _torch_native(model: Any) -> LayeredInput | BlockInput:
    """The native graph of a torch model passed where a graph is taken (from_torch's defaults)."""
    trace = _trace(model, None, "all", "l1")
    if trace.pairs == tuple((l, l + 1) for l in range(len(trace.sizes) - 1)):
        return LayeredInput(check_weights(list(trace.blocks), "model weights"))
    return block_input(trace.sizes, trace.pairs, trace.blocks)


# --- reading an igraph.Graph ----------------------------------------------------


class _IgraphVector(ctypes.Structure):
    _fields_ = [("begin", ctypes.c_void_p), ("storage_end", ctypes.c_void_p), ("end", ctypes.c_void_p)]


class _IgraphGraph(ctypes.Structure):
    # The leading fields of igraph's C graph (igraph_t: n, directed, from, to, ...),
    # whose address python-igraph hands out for C code (Graph._raw_pointer).
    _fields_ = [("n", ctypes.c_int64), ("directed", ctypes.c_bool),
                ("source", _IgraphVector), ("target", _IgraphVector)]


def _raw_endpoints(g: ig.Graph) -> tuple | None:
    """Zero-copy int64 views of igraph's edge endpoint arrays, or None.

    None when the memory layout cannot be confirmed (another python-igraph
    build): the sizes, the alignment and three edges read through the public
    API must all agree with it before the views are trusted.
    """
    pointer = getattr(g, "_raw_pointer", None)
    m = g.ecount()
    if pointer is None or m == 0 or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    raw = _IgraphGraph.from_address(pointer())
    if raw.n != g.vcount() or bool(raw.directed) != g.is_directed():
        return None
    views = []
    for vec in (raw.source, raw.target):
        begin, end, cap = vec.begin or 0, vec.end or 0, vec.storage_end or 0
        if begin == 0 or begin % 8 or end - begin != 8 * m or cap < end:
            return None
        views.append(np.ctypeslib.as_array((ctypes.c_int64 * m).from_address(begin)))
    source, target = views
    for e in {0, m // 2, m - 1}:
        if sorted(g.es[e].tuple) != sorted((int(source[e]), int(target[e]))):
            return None
    return source, target


def _endpoints(g: ig.Graph) -> tuple:
    """(source, target) int64 arrays of every edge, in edge order."""
    raw = _raw_endpoints(g)
    if raw is not None:
        return raw
    e = np.asarray(g.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(e[:, 0]), np.ascontiguousarray(e[:, 1])


def _edge_weights(g: ig.Graph) -> list | None:
    return g.es["weight"] if "weight" in g.es.attributes() else None


def _stored_layers(g: ig.Graph) -> LayeredInput | None:
    """The graph's stored layer weights if its edges are exactly those weights, else None."""
    attrs = g.attributes()
    if "layer_weights" not in attrs or "layer_sizes" not in attrs or g.is_directed():
        return None
    try:
        ws = check_weights(g["layer_weights"], "graph['layer_weights']")
    except (TypeError, ValueError):
        return None
    sizes = [ws[0].shape[0]] + [w.shape[1] for w in ws]
    if list(g["layer_sizes"]) != sizes or g.vcount() != sum(sizes):
        return None
    m = g.ecount()
    if m == 0:
        return LayeredInput(ws) if not any(w.any() for w in ws) else None
    weights = _edge_weights(g)
    if weights is None:
        return None
    # The kernel also counts the non-zeros: every one must be the next edge.
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    source, target = _endpoints(g)
    if not _core.blocks_match_edges(list(ws), offsets[:-2], offsets[1:-1], source, target, weights):
        return None
    return LayeredInput(ws)


def _stored_blocks(g: ig.Graph) -> BlockInput | None:
    """The graph's stored blocks (from_blocks) if its edges are exactly those blocks, else None."""
    attrs = g.attributes()
    if not {"layer_blocks", "layer_pairs", "layer_sizes"} <= set(attrs) or g.is_directed():
        return None
    try:
        native = check_blocks(g["layer_blocks"], g["layer_sizes"], g["layer_pairs"], "graph['layer_blocks']")
    except (TypeError, ValueError):
        return None
    if g.vcount() != native.n_nodes:
        return None
    if g.ecount() == 0:
        return native if not any(w.any() for w in native.blocks) else None
    weights = _edge_weights(g)
    if weights is None:
        return None
    _, src, dst, blocks = native.native_args()
    offsets = native.offsets
    source, target = _endpoints(g)
    if not _core.blocks_match_edges(blocks, offsets[src], offsets[dst], source, target, weights):
        return None
    return native


def _layers_from_edges(g: ig.Graph) -> LayeredInput | BlockInput:
    """Layer weights read from the edges of a graph whose vertices say their layer and unit:
    a chain when every edge joins consecutive layers, else blocks for the pairs of layers the
    edges join (src < dst, in sorted order)."""
    why = None
    if "layer" not in g.vs.attributes() or "unit" not in g.vs.attributes():
        why = "its vertices have no 'layer' and 'unit' attributes"
    else:
        try:
            layer = np.asarray(g.vs["layer"], dtype=np.int64)
            unit = np.asarray(g.vs["unit"], dtype=np.int64)
        except (TypeError, ValueError):
            why = "its 'layer' or 'unit' vertex attribute is not integer"
    if why is None:
        n_layers = int(layer.max()) + 1 if layer.size else 0
        sizes = np.bincount(layer, minlength=n_layers) if layer.size and layer.min() >= 0 else None
        if sizes is None or n_layers < 2 or (sizes == 0).any():
            why = "its 'layer' vertex attribute does not number layers 0, 1, ... (each non-empty)"
        else:
            order = np.lexsort((unit, layer))
            expected = np.concatenate([np.arange(s) for s in sizes])
            if not np.array_equal(unit[order], expected):
                why = "its 'unit' vertex attribute does not number each layer's units 0, 1, ..."
    if why is None and g.is_directed():
        why = "it is directed"
    if why is not None:
        raise ValueError(
            "graph must have layer structure (a torch MLP, a graph made by from_torch or from_layers, "
            f"or a list of weight matrices); this igraph graph has none: {why}"
        )
    csr = _csr_from_igraph(g)
    rows = np.repeat(np.arange(csr.n_nodes), np.diff(csr.indptr))
    lu, lv = layer[rows], layer[csr.indices]
    if (lu == lv).any():
        bad = np.flatnonzero(lu == lv)[0]
        raise ValueError(
            "graph must only join units of different layers to have layer structure, but it has an "
            f"edge between vertex {rows[bad]} and vertex {csr.indices[bad]}, both in layer {lu[bad]}"
        )
    forward = lv > lu  # each edge once, from its lower layer
    r, c, w = rows[forward], csr.indices[forward], csr.data[forward]
    ls, ld = lu[forward], lv[forward]
    if (ld - ls == 1).all():
        weights = [np.zeros((int(sizes[l]), int(sizes[l + 1]))) for l in range(n_layers - 1)]
        for l in range(n_layers - 1):
            sel = ls == l
            weights[l][unit[r[sel]], unit[c[sel]]] = w[sel]
        return LayeredInput(tuple(weights))
    pairs = sorted({(int(a), int(b)) for a, b in zip(ls.tolist(), ld.tolist())})
    blocks = []
    for a, b in pairs:
        sel = (ls == a) & (ld == b)
        block = np.zeros((int(sizes[a]), int(sizes[b])))
        block[unit[r[sel]], unit[c[sel]]] = w[sel]
        blocks.append(block)
    return block_input(sizes, pairs, blocks)


# --- validation of every accepted input ---------------------------------------------


def _check_sparse_structure(m: Any) -> None:
    """Reject index arrays that would make scipy's own C++ routines read or
    write out of bounds (scipy only checks them fully on request)."""
    n = m.shape[0]
    if m.format in ("csr", "csc", "bsr"):
        try:
            m.check_format(full_check=True)
        except ValueError as exc:
            raise ValueError(f"graph must be a valid sparse matrix: {exc}") from None
    elif m.format == "coo":
        coords = m.coords if hasattr(m, "coords") else (m.row, m.col)
        for c in coords:
            if c.size and (c.min() < 0 or c.max() >= n):
                raise ValueError(
                    f"graph must be a valid sparse matrix, got a COO index out of range [0, {n})"
                )


def _csr(a: sp.csr_matrix) -> CsrInput:
    return CsrInput(
        np.ascontiguousarray(a.indptr, dtype=np.int64),
        np.ascontiguousarray(a.indices, dtype=np.int64),
        np.ascontiguousarray(a.data, dtype=np.float64),
    )


def _csr_from_scipy(m: Any) -> CsrInput:
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"graph must be a square matrix, got shape {m.shape}")
    _check_sparse_structure(m)
    dtype = m.dtype
    if dtype.kind == "O" or not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise TypeError(f"graph must have numeric weights, got dtype {dtype}")
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"graph must have real weights, got dtype {dtype}")
    a = sp.csr_matrix(m, dtype=np.float64)
    a.sum_duplicates()
    a.sort_indices()
    data = a.data
    if not np.isfinite(data).all():
        raise ValueError("graph weights must be finite, got NaN or inf")
    if (data < 0).any():
        raise ValueError(f"graph weights must be non-negative, got {data.min():g}")
    if a.diagonal().any():
        i = int(np.flatnonzero(a.diagonal())[0])
        raise ValueError(f"graph must have no self-loops, got a non-zero weight at ({i}, {i})")
    diff = abs(a - a.T)
    # Round-off is judged entry by entry: an edge present in one direction
    # only is asymmetric however large the other weights are.
    if diff.nnz and (diff - a.maximum(a.T) * _SYMMETRY_RTOL).max() > 0:
        raise ValueError("graph must be symmetric (undirected), got an asymmetric matrix")
    if diff.nnz:
        a = ((a + a.T) * 0.5).tocsr()
        a.sort_indices()
    a.eliminate_zeros()
    return _csr(a)


def _csr_from_igraph(g: ig.Graph) -> CsrInput:
    if g.is_directed():
        raise ValueError("graph must be undirected, got a directed igraph.Graph")
    n, m = g.vcount(), g.ecount()
    weights = _edge_weights(g)
    if weights is None:
        w = np.ones(m)
    else:
        try:
            w = np.array(weights, dtype=np.float64) if m else np.zeros(0)
        except (TypeError, ValueError):
            raise ValueError("graph edge weights must be numbers, got a missing or non-numeric value") from None
    if not np.isfinite(w).all():
        if weights is not None and None in weights:
            raise ValueError(
                "graph edge weights must be numbers, got None (edges added without a weight, or weights "
                "dropped by an igraph operation such as rewire)"
            )
        raise ValueError("graph edge weights must be finite, got NaN or inf")
    if (w < 0).any():
        raise ValueError(f"graph edge weights must be non-negative, got {w.min():g}")
    source, target = _endpoints(g) if m else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    loops = source == target
    if loops.any():
        raise ValueError(f"graph must have no self-loops, got a loop on vertex {int(source[loops][0])}")
    rows = np.concatenate([source, target])
    cols = np.concatenate([target, source])
    a = sp.csr_matrix((np.concatenate([w, w]), (rows, cols)), shape=(n, n))
    a.sum_duplicates()
    a.sort_indices()
    a.eliminate_zeros()
    return _csr(a)


def _csr_from_dense(graph: Any) -> CsrInput:
    a = np.asarray(graph)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"graph must have numeric weights, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise TypeError(f"graph must have real weights, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"graph must be a square matrix, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError("graph weights must be finite, got NaN or inf")
    return _csr_from_scipy(sp.csr_matrix(a))


def as_native(graph: Any) -> NativeGraph:
    """Validate ``graph`` and convert it to the form the kernel takes.

    Accepts an igraph.Graph (edge attribute "weight", absent = 1; a graph from
    from_layers/from_torch/from_blocks whose edges still are its stored weights
    keeps its layers or blocks), a scipy sparse matrix or array, a dense 2-D array, a torch MLP, or
    a list of (in, out) layer weight matrices (numpy arrays, as from_layers
    takes them; edge weights |w|).
    """
    if isinstance(graph, (LayeredInput, BlockInput, CsrInput)):
        return graph
    if isinstance(graph, ig.Graph):
        return _stored_layers(graph) or _stored_blocks(graph) or _csr_from_igraph(graph)
    if sp.issparse(graph):
        return _csr_from_scipy(graph)
    if is_torch_module(graph):
        return as_layered(graph)
    if isinstance(graph, (list, tuple)) and len(graph) > 0 and all(isinstance(w, np.ndarray) for w in graph):
        # The (in, out) layer weights from_layers takes: the same graph, without igraph.
        if len(graph) == 1 and graph[0].ndim == 2 and graph[0].shape[0] == graph[0].shape[1]:
            raise ValueError(
                "graph is a list holding one square matrix: it could be an adjacency matrix or one "
                "(in, out) layer; pass the adjacency itself, or from_layers([w]) for a layer"
            )
        return LayeredInput(check_weights(graph, "graph"))
    if isinstance(graph, np.ndarray) or (
        isinstance(graph, (list, tuple)) and len(graph) > 0 and not isinstance(graph[0], np.ndarray)
    ):
        return _csr_from_dense(graph)
    raise TypeError(
        "graph must be an igraph.Graph, a scipy sparse matrix, a square numpy array, a "
        f"torch module or a list of (in, out) numpy weight matrices, got {type(graph).__name__}"
    )


def as_layered(graph: Any) -> LayeredInput | BlockInput:
    """The layer weights of a torch MLP, a layered igraph graph, or a sequence of
    (in, out) matrices; the blocks of a from_blocks graph; ValueError for
    graphs without layers.

    An igraph graph gives its stored weights (or blocks) while its edges are
    exactly those, else the weights its edges and its vertices' ``layer`` /
    ``unit`` attributes say (magnitudes: edge weights are |w|): a chain when
    every edge joins consecutive layers, else blocks for the pairs of layers
    its edges join.
    """
    if isinstance(graph, (LayeredInput, BlockInput)):
        return graph
    if is_torch_module(graph):
        return _torch_native(graph)
    if isinstance(graph, ig.Graph):
        return _stored_layers(graph) or _stored_blocks(graph) or _layers_from_edges(graph)
    if isinstance(graph, (list, tuple)) and graph and all(np.ndim(w) == 2 for w in graph):
        return LayeredInput(check_weights(graph, "graph"))
    if isinstance(graph, np.ndarray) or sp.issparse(graph) or isinstance(graph, CsrInput):
        raise ValueError(
            "graph must have layer structure (a torch MLP, a from_torch/from_layers graph or a "
            "list of (in, out) weight matrices), got a plain adjacency matrix"
        )
    raise TypeError(
        "graph must be a torch MLP, an igraph.Graph made by from_torch/from_layers, or a list "
        f"of weight matrices, got {type(graph).__name__}"
    )


def layer_weights(graph: Any) -> list:
    """The per-layer weight matrices of a layered graph or a torch MLP.

    Parameters
    ----------
    graph : igraph.Graph or torch.nn.Module
        A graph made by :func:`from_layers` or :func:`from_torch`, or any
        igraph graph whose vertices carry ``layer`` and ``unit`` attributes
        and whose edges join consecutive layers, or an MLP.

    Returns
    -------
    list of ndarray
        Float64 matrices of shape (in, out), read-only: the signed stored
        weights while the graph's edges are exactly those, else the edge
        weights (|w|) of the graph as it is now.

    Raises
    ------
    ValueError
        If the graph carries no layer structure, or blocks between
        non-consecutive layers (a :func:`from_blocks` graph).
    TypeError
        If ``graph`` is neither an igraph graph nor a torch module.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> g = netmod.from_layers([np.arange(6.0).reshape(2, 3) - 2])
    >>> netmod.layer_weights(g)[0].tolist()
    [[-2.0, -1.0, 0.0], [1.0, 2.0, 3.0]]
    >>> g.es["weight"] = [1.0] * g.ecount()   # an edit: the graph now says |w| = 1
    >>> netmod.layer_weights(g)[0].tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    """
    if not (is_torch_module(graph) or isinstance(graph, ig.Graph)):
        raise TypeError(f"graph must be an igraph.Graph or a torch module, got {type(graph).__name__}")
    layered = as_layered(graph)
    if isinstance(layered, BlockInput):
        raise ValueError(
            "layer_weights needs an MLP chain (blocks between consecutive layers only), but graph has "
            f"blocks between layers {list(layered.pairs)}; a from_blocks graph keeps them in graph['layer_blocks']"
        )
    return [_read_only(w) for w in layered.weights]


def to_igraph(graph: Any) -> ig.Graph:
    """The graph as an undirected igraph.Graph with weights |w| (attribute "weight").

    An undirected igraph graph is validated and returned as is (with unit
    weights added, on a copy, if it has none); layered inputs become
    :func:`from_layers` graphs, block inputs :func:`from_blocks` graphs; matrices are converted (zero-degree nodes
    kept, without edges).

    Examples
    --------
    >>> import numpy as np
    >>> to_igraph(np.array([[0, 2.0], [2.0, 0]])).es["weight"]
    [2.0]
    """
    if isinstance(graph, ig.Graph) and not graph.is_directed():
        as_native(graph)  # validates weights and self-loops
        if "weight" in graph.es.attributes():
            return graph
        g = graph.copy()
        g.es["weight"] = [1.0] * g.ecount()
        return g
    native = as_native(graph)
    if isinstance(native, LayeredInput):
        return from_layers(list(native.weights))
    if isinstance(native, BlockInput):
        return from_blocks(list(native.blocks), sizes=native.sizes, pairs=native.pairs)
    n = native.n_nodes
    rows = np.repeat(np.arange(n), np.diff(native.indptr))
    upper = native.indices > rows
    g = ig.Graph(n=n, edges=np.column_stack([rows[upper], native.indices[upper]]).tolist())
    g.es["weight"] = native.data[upper].tolist()
    return g


# The kernel sums weights into degrees and volumes: a graph whose weights
# could overflow those sums, or whose weights are all far below 1 (subnormal
# ones have lost their precision), is rescaled first by a power of two, which
# is exact and changes neither the n-cut nor the spectral partition. The shift
# is the smallest that brings the sum of all weights below 2**_MAX_EXP (or the
# largest weight up to about 1), so small weights are not flushed needlessly.
_MAX_EXP = 1000
_MIN_EXP = -400


def _scale_shift(arrays: Sequence[np.ndarray]) -> int:
    # max and min, not abs: no temporary copy of a large weight matrix.
    top = max((max(float(a.max()), -float(a.min())) for a in arrays if a.size), default=0.0)
    if top == 0.0:
        return 0
    exponent = int(np.frexp(top)[1])  # top < 2**exponent
    count = sum(a.size for a in arrays)
    width = int(np.ceil(np.log2(count)))
    if exponent + width > _MAX_EXP:
        shift = _MAX_EXP - exponent - width
    elif exponent < _MIN_EXP:
        shift = -exponent
    else:
        return 0
    return shift - shift % 2  # even: D^-1/2 scales exactly too


def for_kernel(native: NativeGraph) -> NativeGraph:
    """``native`` with its weights brought to a magnitude the kernel handles
    without overflow or subnormals (unchanged, not copied, when already so)."""
    if isinstance(native, LayeredInput):
        shift = _scale_shift(native.weights)
        return native if shift == 0 else LayeredInput(tuple(np.ldexp(w, shift) for w in native.weights))
    if isinstance(native, BlockInput):
        shift = _scale_shift(native.blocks)
        if shift == 0:
            return native
        return block_input(native.sizes, native.pairs, [np.ldexp(w, shift) for w in native.blocks])
    shift = _scale_shift([native.data])
    return native if shift == 0 else CsrInput(native.indptr, native.indices, np.ldexp(native.data, shift))
