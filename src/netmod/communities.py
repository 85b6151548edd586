"""Community detection by Leiden and Louvain, as netmod Partitions.

Both igraph's built-in Leiden and the leidenalg reference implementation are
wrapped so that they agree with the rest of netmod: edge weights are |w|
(never signed), the objective is always passed explicitly (igraph's default,
CPM at resolution 1, splits an MLP graph into hundreds of clusters),
zero-degree nodes get label -1, clusters are numbered from the largest, and
runs are seeded without touching any global random state.
"""

from __future__ import annotations

import math
import random
from contextlib import contextmanager
from typing import Any

import igraph as ig
import numpy as np

from .graphs import CsrInput, LayeredInput, as_native, check_int, from_layers
from .results import Partition

__all__ = ["leiden", "louvain", "modularity", "to_igraph"]

OBJECTIVES = ("modularity", "rb", "cpm")
BACKENDS = ("igraph", "leidenalg")


def to_igraph(graph: Any) -> ig.Graph:
    """The graph as an undirected igraph.Graph with weights |w| (attribute "weight").

    A graph made by from_layers/from_torch is returned as is; matrices and
    torch modules are converted (zero-degree nodes kept, without edges).

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
    native = graph if isinstance(graph, (LayeredInput, CsrInput)) else as_native(graph)
    if isinstance(native, LayeredInput):
        return from_layers(list(native.weights))
    n = native.n_nodes
    rows = np.repeat(np.arange(n), np.diff(native.indptr))
    upper = native.indices > rows
    g = ig.Graph(n=n, edges=np.column_stack([rows[upper], native.indices[upper]]).tolist())
    g.es["weight"] = native.data[upper].tolist()
    return g


@contextmanager
def _seeded(seed: int):
    """igraph draws from a Python-level generator: use a private one."""
    ig.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        ig.set_random_number_generator(random)


def _check_resolution(resolution: Any) -> float:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float, np.integer, np.floating)):
        raise TypeError(f"resolution must be a number, got {type(resolution).__name__}")
    resolution = float(resolution)
    if not (math.isfinite(resolution) and resolution >= 0):
        raise ValueError(f"resolution must be finite and >= 0, got {resolution}")
    return resolution


def _live_subgraph(g: ig.Graph) -> tuple[ig.Graph, np.ndarray]:
    strength = np.asarray(g.strength(weights="weight"), dtype=np.float64)
    live = np.flatnonzero(strength > 0)
    if live.size == 0:
        raise ValueError("graph has no edges (all weights are zero): there are no communities to find")
    return (g if live.size == g.vcount() else g.induced_subgraph(live.tolist())), live


def _partition(g: ig.Graph, live: np.ndarray, membership: Any, method: str, seed: int,
               info: dict) -> Partition:
    from .spectral import ncut as _ncut

    raw = np.asarray(membership, dtype=np.int64)
    sizes = np.bincount(raw)
    first = np.full(sizes.size, raw.size)
    np.minimum.at(first, raw, np.arange(raw.size))
    order = np.lexsort((first, -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    labels = np.full(g.vcount(), -1, dtype=np.int64)
    labels[live] = rank[raw]
    k = int(sizes.size)
    return Partition(
        labels=labels,
        n_clusters=k,
        ncut=_ncut(g, labels) if k > 0 else 0.0,
        eigenvalues=np.empty(0),
        method=method,
        seed=seed,
        n_init=1,
        tol=0.0,
        info={**info, "modularity": modularity(g, labels)},
    )


def modularity(graph: Any, labels: Any, *, resolution: float = 1.0) -> float:
    """Weighted modularity Q of a partition (label -1 nodes have degree 0 and add nothing).

    Raises
    ------
    ValueError
        If the labels do not fit the graph, or the graph has no edges (Q
        divides by the total weight, so it is undefined there).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.kron(np.eye(2), np.ones((3, 3))) - np.eye(6)
    >>> round(modularity(a, [0, 0, 0, 1, 1, 1]), 6)
    0.5
    """
    g = to_igraph(graph)
    lab = np.asarray(labels, dtype=np.int64)
    if lab.shape != (g.vcount(),):
        raise ValueError(f"labels must have one entry per node ({g.vcount()}), got shape {lab.shape}")
    strength = np.asarray(g.strength(weights="weight"))
    if not (strength > 0).any():
        raise ValueError("modularity is undefined for a graph without edges (total weight 0)")
    if ((lab < 0) & (strength > 0)).any():
        raise ValueError("labels: -1 is allowed only on zero-degree nodes")
    member = lab.copy()
    missing = member < 0
    member[missing] = member.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return float(g.modularity(member.tolist(), weights="weight", resolution=_check_resolution(resolution)))


def leiden(
    graph: Any,
    *,
    objective: str = "modularity",
    resolution: float = 1.0,
    seed: int = 0,
    backend: str = "igraph",
    n_iterations: int = -1,
) -> Partition:
    """Leiden community detection (Traag, Waltman & van Eck 2019).

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
        As for :func:`netmod.spectral_clustering`; weights |w|.
    objective : {"modularity", "rb", "cpm"}, default "modularity"
        Modularity (resolution 1), RB configuration (modularity with
        ``resolution``), or the constant Potts model with ``resolution``.
    resolution : float, default 1.0
        Resolution of "rb" and "cpm" (ignored by "modularity").
    seed : int, default 0
    backend : {"igraph", "leidenalg"}, default "igraph"
        igraph's built-in Leiden (fast) or the leidenalg reference package.
    n_iterations : int, default -1
        Iterations; negative = until an iteration improves nothing.

    Returns
    -------
    Partition
        ``method`` is "leiden"; ``n_clusters`` is the number found;
        ``info`` holds the objective, backend, resolution and weighted
        modularity.

    Raises
    ------
    TypeError, ValueError
        For invalid graphs or parameters.

    References
    ----------
    V. A. Traag, L. Waltman, N. J. van Eck, "From Louvain to Leiden:
    guaranteeing well-connected communities", Sci. Rep. 9, 5233 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.kron(np.eye(3), np.ones((4, 4))) - np.eye(12)
    >>> a[3, 4] = a[4, 3] = 0.1
    >>> p = leiden(a, seed=1)
    >>> p.n_clusters, p.labels.tolist()
    (3, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    resolution = _check_resolution(resolution)
    seed = check_int(seed, "seed", 0)
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, (int, np.integer)) or n_iterations == 0:
        raise ValueError(f"n_iterations must be a non-zero integer (negative = until stable), got {n_iterations!r}")
    g = to_igraph(graph)
    sub, live = _live_subgraph(g)
    gamma = 1.0 if objective == "modularity" else resolution
    if sub.vcount() == 0:
        membership: list = []
    elif backend == "igraph":
        with _seeded(seed):
            membership = sub.community_leiden(
                objective_function="CPM" if objective == "cpm" else "modularity",
                weights="weight",
                resolution=gamma,
                n_iterations=int(n_iterations),
            ).membership
    else:
        import leidenalg

        kind = {
            "modularity": leidenalg.ModularityVertexPartition,
            "rb": leidenalg.RBConfigurationVertexPartition,
            "cpm": leidenalg.CPMVertexPartition,
        }[objective]
        extra = {} if objective == "modularity" else {"resolution_parameter": gamma}
        membership = leidenalg.find_partition(
            sub, kind, weights="weight", n_iterations=int(n_iterations), seed=seed % 2**31, **extra
        ).membership
    info = {"objective": objective, "backend": backend, "resolution": gamma, "n_iterations": int(n_iterations)}
    return _partition(g, live, membership, "leiden", seed, info)


def louvain(graph: Any, *, resolution: float = 1.0, seed: int = 0) -> Partition:
    """Louvain (multilevel) modularity optimisation, igraph's implementation.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.kron(np.eye(2), np.ones((4, 4))) - np.eye(8)
    >>> louvain(a).labels.tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    """
    resolution = _check_resolution(resolution)
    seed = check_int(seed, "seed", 0)
    g = to_igraph(graph)
    sub, live = _live_subgraph(g)
    with _seeded(seed):
        membership = (
            sub.community_multilevel(weights="weight", resolution=resolution).membership
            if sub.vcount()
            else []
        )
    return _partition(g, live, membership, "louvain", seed, {"resolution": resolution, "backend": "igraph"})
