"""Normalised cut and spectral clustering over the native kernel."""

from __future__ import annotations

from typing import Any

from ._native import core as _core
from ._validate import check_int, check_labels, check_seed, check_threads, check_tol
from .graphs import BlockInput, LayeredInput, NativeGraph, as_native, for_kernel, graph_info
from .results import Embedding, Partition

__all__ = ["ncut", "spectral_clustering", "spectral_embedding"]

DEFAULT_TOL = 1e-8

# Partition.info["operator"]: which form of the graph the kernel multiplied by.
_OPERATORS = {LayeredInput: "layered", BlockInput: "blocks"}


def _run(native: NativeGraph, **kw: Any) -> dict:
    native = for_kernel(native)
    if isinstance(native, LayeredInput):
        return _core.spectral_layers(list(native.weights), **kw)
    if isinstance(native, BlockInput):
        return _core.spectral_blocks(*native.native_args(), **kw)
    return _core.spectral_csr(native.indptr, native.indices, native.data, **kw)


def solver_info(r: dict) -> dict:
    """The eigensolver's account of a kernel call (what results keep in ``info``)."""
    return {"solver": r["solver"], "n_matvec": int(r["n_matvec"]), "n_restarts": int(r["n_restarts"]),
            "max_residual": float(r["max_residual"]), "n_components": int(r["n_components"])}


def ncut(graph: Any, labels: Any = None, *, n_clusters: int = 12, seed: int | None = 0) -> float:
    """Normalised cut of a partition, or of the graph's spectral partition.

    ``ncut = sum_c cut(C_c, V \\ C_c) / vol(C_c)``, where cut is the weight of
    the edges leaving cluster c and vol the sum of its nodes' weighted
    degrees. Lower means more modular; the value lies in [0, k].

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
        Undirected weighted graph (see :func:`spectral_clustering`).
    labels : array_like of int, shape (n_nodes,), optional
        Cluster of each node. Ids need not be contiguous; -1 marks a node left
        out, allowed only on zero-degree nodes. Clusters of zero volume add 0.
        If omitted, the n-cut of ``spectral_clustering(graph,
        n_clusters=n_clusters, seed=seed)`` ("the n-cut of the network").
    n_clusters, seed : int
        Used only when ``labels`` is omitted.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        For invalid graphs or labels (see :func:`spectral_clustering`); a
        ValueError if a node with edges has label -1.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> a = np.array([[0, 1, 0, 0], [1, 0, 0.1, 0], [0, 0.1, 0, 1], [0, 0, 1, 0]])
    >>> round(netmod.ncut(a, [0, 0, 1, 1]), 6)
    0.095238
    """
    native = as_native(graph)
    if labels is None:
        return spectral_clustering(native, n_clusters=n_clusters, seed=seed).ncut
    lab = check_labels(labels, native.n_nodes)
    native = for_kernel(native)
    if isinstance(native, LayeredInput):
        return float(_core.ncut_layers(list(native.weights), lab))
    if isinstance(native, BlockInput):
        return float(_core.ncut_blocks(*native.native_args(), lab))
    return float(_core.ncut_csr(native.indptr, native.indices, native.data, lab))


def spectral_clustering(
    graph: Any,
    *,
    n_clusters: int = 12,
    seed: int | None = 0,
    n_init: int = 10,
    tol: float = DEFAULT_TOL,
    n_threads: int | None = None,
) -> Partition:
    """Normalised spectral clustering (Shi-Malik), as in the modularity papers.

    Zero-degree nodes are removed (label -1). The ``n_clusters`` eigenvectors
    of the symmetric normalised Laplacian with the smallest eigenvalues are
    found by a block thick-restart Lanczos solver (for layered graphs, and
    block graphs whose layers 2-colour, on the bipartite square B^T B;
    ``info["solver"]`` says "bipartite-lanczos" then, else "lanczos"),
    divided by sqrt(degree), and clustered by
    k-means (greedy k-means++ seeding, ``n_init`` restarts, best inertia).
    Connected components are found exactly first, so disconnected graphs and
    repeated eigenvalues are handled.

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
        An undirected graph with non-negative weights: an igraph graph (edge
        attribute "weight", absent = 1; one made by :func:`netmod.from_torch`,
        :func:`netmod.from_layers` or :func:`netmod.from_blocks` is clustered
        block by block), a symmetric
        scipy sparse or dense matrix without self-loops, or a PyTorch MLP.
    n_clusters : int, default 12
        Number of clusters k, 2 <= k <= number of non-isolated nodes.
    seed : int or None, default 0
        Seed of the eigensolver start and the k-means restarts; the same seed
        gives the same labels. None draws one (recorded in the result).
    n_init : int, default 10
        k-means restarts.
    tol : float, default 1e-8
        Bound on the residual norm ||N x - theta x|| of every eigenvector
        (N = D^-1/2 A D^-1/2 has norm 1). Labels of MLP graphs are only stable
        at about 1e-6 or tighter.
    n_threads : int or None
        Threads for the k-means restarts; None = all cores. The result does not
        depend on it.

    Returns
    -------
    Partition

    Raises
    ------
    TypeError
        For an unsupported graph object or non-integer parameters.
    ValueError
        For non-square, asymmetric, negative, NaN/inf or self-loop graphs, and
        for parameters out of range (n_clusters < 2 or above the number of
        non-isolated nodes, n_init < 1, tol <= 0, n_threads < 1, seed < 0).
    RuntimeError
        If the eigensolver does not converge (never seen on valid inputs).

    References
    ----------
    J. Shi and J. Malik, "Normalized cuts and image segmentation", IEEE TPAMI
    22(8), 2000. D. Filan et al., "Clusterability in neural networks",
    arXiv:2103.03386.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> rng = np.random.default_rng(0)
    >>> g = netmod.from_layers([np.abs(rng.normal(size=(20, 10))), np.abs(rng.normal(size=(10, 5)))])
    >>> p = netmod.spectral_clustering(g, n_clusters=3, seed=0)
    >>> p.labels.shape, p.n_clusters, 0 <= p.ncut <= 3
    ((35,), 3, True)
    """
    native = as_native(graph)
    k = check_int(n_clusters, "n_clusters", 2, 2**63 - 1)
    n_init = check_int(n_init, "n_init", 1, 2**31 - 1)
    tol = check_tol(tol)
    seed = check_seed(seed)
    threads = check_threads(n_threads)
    r = _run(native, n_clusters=k, n_init=n_init, tol=tol, seed=seed, n_threads=threads)
    info = {**solver_info(r), "inertia": float(r["inertia"]), "operator": _OPERATORS.get(type(native), "csr"),
            **graph_info(graph)}
    return Partition(
        labels=r["labels"],
        n_clusters=k,
        ncut=float(r["ncut"]),
        eigenvalues=r["eigenvalues"],
        method="spectral",
        seed=seed,
        n_init=n_init,
        tol=tol,
        info=info,
    )


def spectral_embedding(
    graph: Any, *, n_components: int = 12, seed: int | None = 0, tol: float = DEFAULT_TOL
) -> Embedding:
    """Smallest eigenpairs of the symmetric normalised Laplacian of a graph.

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
        As for :func:`spectral_clustering`.
    n_components : int, default 12
        Number of eigenpairs, 2 <= n_components <= number of non-isolated nodes.
    seed : int or None, default 0
        Seed of the eigensolver's start block.
    tol : float, default 1e-8
        Bound on each eigenvector's residual norm.

    Returns
    -------
    Embedding
        ``eigenvalues`` ascending, ``vectors`` orthonormal (zero rows for
        zero-degree nodes), ``kept`` mask.

    Raises
    ------
    TypeError, ValueError
        As for :func:`spectral_clustering`.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> ring = np.roll(np.eye(6), 1, axis=1); ring = ring + ring.T
    >>> e = netmod.spectral_embedding(ring, n_components=3)
    >>> np.round(e.eigenvalues, 6)
    array([0. , 0.5, 0.5])
    """
    native = as_native(graph)
    k = check_int(n_components, "n_components", 2, 2**63 - 1)
    tol = check_tol(tol)
    seed = check_seed(seed)
    try:
        r = _run(native, n_clusters=k, cluster=False, tol=tol, seed=seed, n_threads=1)
    except ValueError as exc:
        raise ValueError(str(exc).replace("n_clusters", "n_components")) from None
    info = {
        "solver": r["solver"],
        "n_matvec": int(r["n_matvec"]),
        "max_residual": float(r["max_residual"]),
        "n_components": int(r["n_components"]),
        **graph_info(graph),
    }
    return Embedding(
        eigenvalues=r["eigenvalues"], vectors=r["vectors"], kept=r["kept"], seed=seed, tol=tol, info=info
    )
