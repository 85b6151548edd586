"""Graph inputs: validate anything netmod accepts and hand the kernel arrays.

Two native forms exist. A *layered* graph is a chain of weight matrices
(MLP layers, shape (in, out), signed; edge weight |w|): the kernel multiplies
by the blocks directly. Every other graph becomes a symmetric CSR matrix
(int64 indices, float64 non-negative weights).
"""

from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass
from typing import Any, Sequence, Union

import igraph as ig
import numpy as np
import scipy.sparse as sp

__all__ = ["from_layers", "layer_weights"]

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


@dataclass(frozen=True)
class CsrInput:
    """Symmetric CSR adjacency, no self-loops, finite non-negative weights."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.size - 1)


NativeGraph = Union[LayeredInput, CsrInput]


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _check_weights(weights: Any, name: str) -> tuple:
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


def from_layers(weights: Sequence[Any]) -> ig.Graph:
    """Build the neuron graph of a chain of weight matrices.

    Parameters
    ----------
    weights : sequence of array_like, shapes (n_0, n_1), (n_1, n_2), ...
        Weight matrix of each layer as (in, out), signed (PyTorch's
        ``Linear.weight`` is (out, in): pass its transpose).

    Returns
    -------
    igraph.Graph
        Undirected; one vertex per unit (layer 0 first, units in index order)
        with vertex attributes ``layer`` and ``unit``; an edge for every
        non-zero weight with attribute ``weight`` = |w|; graph attributes
        ``layer_sizes`` and ``layer_weights`` (read-only float64 copies of the
        signed matrices), which let netmod cluster the graph block by block.

    Raises
    ------
    TypeError
        If ``weights`` is not a sequence of numeric arrays.
    ValueError
        If a matrix is not 2-D, not finite, or consecutive shapes do not chain.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> g = netmod.from_layers([np.ones((3, 2)), -np.ones((2, 1))])
    >>> g.vcount(), g.ecount(), g["layer_sizes"]
    (6, 8, [3, 2, 1])
    """
    ws = _check_weights(weights, "weights")
    sizes = [int(ws[0].shape[0])] + [int(w.shape[1]) for w in ws]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    edges, wts = [], []
    for l, w in enumerate(ws):
        i, j = np.nonzero(w)
        edges.append(np.column_stack([i + offsets[l], j + offsets[l + 1]]))
        wts.append(np.abs(w[i, j]))
    g = ig.Graph(n=int(offsets[-1]), edges=np.concatenate(edges).tolist(), directed=False)
    g.es["weight"] = np.concatenate(wts).tolist()
    g.vs["layer"] = np.repeat(np.arange(len(sizes)), sizes).tolist()
    g.vs["unit"] = np.concatenate([np.arange(s) for s in sizes]).tolist()
    frozen = []
    for w in ws:
        c = w.copy()
        c.setflags(write=False)
        frozen.append(c)
    g["layer_sizes"] = sizes
    g["layer_weights"] = frozen
    return g


def _layered_from_igraph(g: ig.Graph) -> LayeredInput | None:
    """The stored layer weights of a from_layers graph, if still current."""
    if "layer_weights" not in g.attributes() or "layer_sizes" not in g.attributes():
        return None
    ws = g["layer_weights"]
    sizes = g["layer_sizes"]
    try:
        ws = _check_weights(ws, "graph['layer_weights']")
    except (TypeError, ValueError):
        return None
    if [ws[0].shape[0]] + [w.shape[1] for w in ws] != list(sizes):
        return None
    # An edited graph (vertices or edges added or removed) no longer matches
    # its stored weights and is read edge by edge instead.
    if g.vcount() != sum(sizes) or g.ecount() != sum(int(np.count_nonzero(w)) for w in ws):
        return None
    return LayeredInput(ws)


def layer_weights(graph: Any) -> list:
    """The per-layer weight matrices of a layered graph or a torch MLP.

    Parameters
    ----------
    graph : igraph.Graph or torch.nn.Module
        A graph made by :func:`from_layers` or :func:`netmod.from_torch`
        (unchanged since), or an MLP.

    Returns
    -------
    list of ndarray
        Signed float64 matrices of shape (in, out), read-only.

    Raises
    ------
    ValueError
        If the graph carries no layer structure, or its vertex or edge count no
        longer matches the stored weights.
    TypeError
        If ``graph`` is neither an igraph graph nor a torch module.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> g = netmod.from_layers([np.arange(6.0).reshape(2, 3)])
    >>> netmod.layer_weights(g)[0].shape
    (2, 3)
    """
    if not (_is_torch_module(graph) or isinstance(graph, ig.Graph)):
        raise TypeError(f"graph must be an igraph.Graph or a torch module, got {type(graph).__name__}")
    ws = as_layered(graph).weights
    out = []
    for w in ws:
        c = np.array(w, copy=True)
        c.setflags(write=False)
        out.append(c)
    return out


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


def _csr_from_scipy(m: Any) -> CsrInput:
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"graph must be a square matrix, got shape {m.shape}")
    _check_sparse_structure(m)
    dtype = m.dtype
    if dtype == object or not (np.issubdtype(dtype, np.number) or dtype == bool):
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
    return CsrInput(
        np.ascontiguousarray(a.indptr, dtype=np.int64),
        np.ascontiguousarray(a.indices, dtype=np.int64),
        np.ascontiguousarray(a.data, dtype=np.float64),
    )


def _csr_from_igraph(g: ig.Graph) -> CsrInput:
    if g.is_directed():
        raise ValueError("graph must be undirected, got a directed igraph.Graph")
    n = g.vcount()
    m = g.ecount()
    if "weight" in g.es.attributes():
        w = np.asarray(g.es["weight"], dtype=np.float64) if m else np.zeros(0)
    else:
        w = np.ones(m)
    if not np.isfinite(w).all():
        raise ValueError("graph edge weights must be finite, got NaN or inf")
    if (w < 0).any():
        raise ValueError(f"graph edge weights must be non-negative, got {w.min():g}")
    e = np.asarray(g.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    if (e[:, 0] == e[:, 1]).any():
        i = int(e[e[:, 0] == e[:, 1], 0][0])
        raise ValueError(f"graph must have no self-loops, got a loop on vertex {i}")
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    a = sp.csr_matrix((np.concatenate([w, w]), (rows, cols)), shape=(n, n))
    a.sum_duplicates()
    a.sort_indices()
    a.eliminate_zeros()
    return CsrInput(
        np.ascontiguousarray(a.indptr, dtype=np.int64),
        np.ascontiguousarray(a.indices, dtype=np.int64),
        np.ascontiguousarray(a.data, dtype=np.float64),
    )


def as_native(graph: Any) -> NativeGraph:
    """Validate ``graph`` and convert it to the form the kernel takes.

    Accepts an igraph.Graph (edge attribute "weight", absent = 1; a graph from
    from_layers/from_torch keeps its layers), a scipy sparse matrix or array,
    a dense 2-D array, or a torch MLP.
    """
    if isinstance(graph, ig.Graph):
        layered = _layered_from_igraph(graph)
        if layered is not None:
            return layered
        return _csr_from_igraph(graph)
    if sp.issparse(graph):
        return _csr_from_scipy(graph)
    if _is_torch_module(graph):
        return as_layered(graph)
    if isinstance(graph, np.ndarray) or (
        isinstance(graph, (list, tuple)) and len(graph) > 0 and not isinstance(graph[0], np.ndarray)
    ):
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
    raise TypeError(
        "graph must be an igraph.Graph, a scipy sparse matrix, a square numpy array or a "
        f"torch module, got {type(graph).__name__}"
    )


def check_int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """An integer parameter in [minimum, maximum] (bools are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


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
    shift = _scale_shift([native.data])
    return native if shift == 0 else CsrInput(native.indptr, native.indices, np.ldexp(native.data, shift))


def as_layered(graph: Any) -> LayeredInput:
    """The layer weights of a torch MLP, a from_layers/from_torch graph, or a
    sequence of (in, out) matrices; ValueError for graphs without layers."""
    if _is_torch_module(graph):
        from .torch_models import layer_weights_from_module

        return LayeredInput(_check_weights(layer_weights_from_module(graph), "model weights"))
    if isinstance(graph, ig.Graph):
        layered = _layered_from_igraph(graph)
        if layered is None:
            raise ValueError(
                "graph must have layer structure (a torch MLP, a graph made by from_torch or "
                "from_layers and not edited since, or a list of weight matrices); this igraph "
                "graph has none or stale layer weights"
            )
        return layered
    if isinstance(graph, (list, tuple)) and graph and all(np.ndim(w) == 2 for w in graph):
        return LayeredInput(_check_weights(graph, "graph"))
    if isinstance(graph, np.ndarray) or sp.issparse(graph):
        raise ValueError(
            "graph must have layer structure (a torch MLP, a from_torch/from_layers graph or a "
            "list of (in, out) weight matrices), got a plain adjacency matrix"
        )
    raise TypeError(
        "graph must be a torch MLP, an igraph.Graph made by from_torch/from_layers, or a list "
        f"of weight matrices, got {type(graph).__name__}"
    )
