"""Choosing k: spectral partitions at many k from one eigensolve, the eigengap, nulls per k."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._native import core as _core
from ._validate import check_choice, check_int, check_optional_bool, check_seed, check_threads, check_tol
from .graphs import BlockInput, LayeredInput, as_layered, as_native, for_kernel, graph_info
from .nulls import (
    LAYER_SHUFFLES,
    SHUFFLES,
    compacted_input,
    edge_input,
    edge_replicate,
    null_statistics,
    shuffled_input,
)
from .results import frozen_array, to_plain, versions
from .spectral import DEFAULT_TOL, solver_info

__all__ = ["Sweep", "sweep"]


@dataclass(frozen=True)
class Sweep:
    """Spectral partitions of one graph at several numbers of clusters k.

    Attributes
    ----------
    ks : ndarray of int64, shape (m,)
        The numbers of clusters, in the order asked for.
    ncut : ndarray of float64, shape (m,)
        n-cut of the spectral partition at each k.
    labels : ndarray of int64, shape (m, n_nodes)
        The partition at each k (as :attr:`netmod.Partition.labels`).
    inertia : ndarray of float64, shape (m,)
        k-means inertia at each k.
    eigenvalues : ndarray of float64, shape (max(ks) + 1,)
        The smallest eigenvalues of the normalised Laplacian, ascending (one
        more than max(ks), for the gap after it; max(ks) when the graph has
        no more non-isolated nodes).
    eigengap : ndarray of float64, shape (m,)
        ``eigenvalues[k] - eigenvalues[k - 1]``: the gap after the k-th
        smallest eigenvalue (NaN where that eigenvalue was not computed).
    best_k_eigengap : int
        The k of ``ks`` with the largest eigengap (ties: the smallest k).
    null_samples : ndarray of float64, shape (n_shuffles, m)
        n-cut of each shuffled network at each k (empty without a null).
    null_mean, null_std, z, percentile : ndarray of float64, shape (m,)
        Per k: the null's mean and population std, ``(ncut - mean) / std``
        and the one-sided percentile (:func:`netmod.empirical_p`, "less");
        NaN without a null.
    shuffle : str or None
        The null's shuffle scheme, None without a null.
    seed, n_init, tol, n_shuffles
        The settings that produced it.
    info : dict
        Eigensolver details: solver, operator applications, residual,
        components; ``graph_info`` of the input.
    versions : dict
    """

    ks: np.ndarray
    ncut: np.ndarray
    labels: np.ndarray
    inertia: np.ndarray
    eigenvalues: np.ndarray
    eigengap: np.ndarray
    best_k_eigengap: int
    null_samples: np.ndarray
    null_mean: np.ndarray
    null_std: np.ndarray
    z: np.ndarray
    percentile: np.ndarray
    shuffle: str | None
    seed: int
    n_init: int
    tol: float
    n_shuffles: int
    info: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        for name in ("ks", "labels"):
            object.__setattr__(self, name, frozen_array(getattr(self, name), np.int64))
        for name in ("ncut", "inertia", "eigenvalues", "eigengap", "null_samples", "null_mean", "null_std", "z",
                     "percentile"):
            object.__setattr__(self, name, frozen_array(getattr(self, name), np.float64))

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version of the result."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_markdown(self) -> str:
        """One row per k: n-cut, eigengap and, with a null, its mean, z and percentile."""
        null = self.n_shuffles > 0
        head = "| k | n-cut | eigengap |" + (f" {self.shuffle} null mean +- sd | z | percentile |" if null else "")
        rule = "|---|---|---|" + ("---|---|---|" if null else "")
        rows = [head, rule]
        for j, k in enumerate(self.ks):
            row = f"| {k} | {self.ncut[j]:.4f} | {self.eigengap[j]:.3g} |"
            if null:
                row += (f" {self.null_mean[j]:.4f} +- {self.null_std[j]:.4f} | {self.z[j]:.2f} |"
                        f" {self.percentile[j]:.3g} |")
            rows.append(row)
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return (f"Sweep(ks={self.ks.tolist()}, best_k_eigengap={self.best_k_eigengap}, "
                f"n_shuffles={self.n_shuffles}, seed={self.seed})")


def _check_ks(ks: Any) -> np.ndarray:
    if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
        raise TypeError(f"ks must be a sequence of ints, got {type(ks).__name__}")
    values = list(ks)
    if not values:
        raise ValueError("ks must hold at least one number of clusters, got none")
    out = [check_int(k, "ks", 2) for k in values]
    if len(set(out)) != len(out):
        raise ValueError(f"ks must not repeat a value, got {values}")
    return np.asarray(out, dtype=np.int64)


def _run(native: Any, ks: np.ndarray, n_eig: int, **kw: Any) -> dict:
    native = for_kernel(native)
    if isinstance(native, LayeredInput):
        return _core.sweep_layers(list(native.weights), ks=ks, n_eigenvalues=n_eig, **kw)
    if isinstance(native, BlockInput):
        return _core.sweep_blocks(*native.native_args(), ks=ks, n_eigenvalues=n_eig, **kw)
    return _core.sweep_csr(native.indptr, native.indices, native.data, ks=ks, n_eigenvalues=n_eig, **kw)


def _n_kept(native: Any) -> int:
    """Number of non-isolated nodes."""
    if isinstance(native, LayeredInput):
        deg = [np.abs(native.weights[0]).sum(axis=1)]
        for l, w in enumerate(native.weights):
            d = np.abs(w).sum(axis=0)
            if l + 1 < len(native.weights):
                d = d + np.abs(native.weights[l + 1]).sum(axis=1)
            deg.append(d)
        return int(sum((d > 0).sum() for d in deg))
    if isinstance(native, BlockInput):
        deg = [np.zeros(s) for s in native.sizes]
        for (a, b), w in zip(native.pairs, native.blocks):
            deg[a] += np.abs(w).sum(axis=1)
            deg[b] += np.abs(w).sum(axis=0)
        return int(sum((d > 0).sum() for d in deg))
    return int((np.diff(native.indptr) > 0).sum())


def sweep(
    graph: Any,
    *,
    ks: Any = range(2, 21),
    seed: int | None = 0,
    n_init: int = 10,
    tol: float = DEFAULT_TOL,
    n_shuffles: int = 0,
    shuffle: str = "layer",
    n_threads: int | None = None,
    progress: bool | None = None,
) -> Sweep:
    """Spectral partitions at every k of ``ks`` from one embedding, the eigengap, and a null per k.

    The eigenvectors are computed once, for max(ks) + 1 eigenvalues; the
    partition at each k is k-means (with the seeds :func:`netmod.spectral_clustering`
    uses) on the first k of them, so it is the partition
    ``spectral_clustering(graph, n_clusters=k, seed=seed)`` gives, up to the
    eigensolver's tolerance: the two agree wherever eigenvalue k is separated
    from eigenvalue k + 1 by much more than ``tol`` (where they are nearly
    equal, the first k eigenvectors are not well defined and either
    partition is as good). The eigengap heuristic picks the k after which the
    spectrum jumps most.

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
        As for :func:`netmod.spectral_clustering`.
    ks : sequence of int, default range(2, 21)
        Numbers of clusters, each >= 2 and at most the number of non-isolated nodes.
    seed : int or None, default 0
        As in :func:`netmod.spectral_clustering`; the null's replicate i is
        shuffled and clustered with the seeds :func:`netmod.shuffle_null` gives it.
    n_init : int, default 10
        k-means restarts at each k.
    tol : float, default 1e-8
        Eigenvector residual bound.
    n_shuffles : int, default 0
        Shuffled networks for a null per k (0: none). Each replicate is swept
        at every k from one eigensolve of its own.
    shuffle : {"layer", "nonzero", "edges"}, default "layer"
        The null's shuffle scheme (:func:`netmod.shuffle_null`); "layer" and
        "nonzero" need a layered graph.
    n_threads : int or None
        Threads (k-means restarts; null replicates); None = all cores. The
        result does not depend on it.
    progress : bool or None
        tqdm progress bar over the null; None shows it only on a terminal.

    Returns
    -------
    Sweep

    Raises
    ------
    TypeError, ValueError
        For invalid graphs or parameters (a k above the number of
        non-isolated nodes, a layer shuffle of a graph without layers).

    Examples
    --------
    >>> import numpy as np, netmod
    >>> blocks = np.kron(np.eye(3), np.ones((5, 5))) + 0.01
    >>> np.fill_diagonal(blocks, 0)
    >>> s = netmod.sweep(blocks, ks=range(2, 7))
    >>> s.best_k_eigengap, s.ncut.shape
    (3, (5,))
    """
    native = as_native(graph)
    ks = _check_ks(ks)
    seed = check_seed(seed)
    n_init = check_int(n_init, "n_init", 1, 2**31 - 1)
    tol = check_tol(tol)
    n_shuffles = check_int(n_shuffles, "n_shuffles", 0)
    shuffle = check_choice(shuffle, "shuffle", SHUFFLES)
    threads = check_threads(n_threads)
    progress = check_optional_bool(progress, "progress")
    n_kept = _n_kept(native)
    top = int(ks.max())
    if top > n_kept:
        raise ValueError(f"ks must be <= the number of non-isolated nodes ({n_kept}), got {top}")
    n_eig = min(top + 1, n_kept)
    r = _run(native, ks, n_eig, n_init=n_init, tol=tol, seed=seed, n_threads=threads)
    lam = np.asarray(r["eigenvalues"])
    gap = np.array([lam[k] - lam[k - 1] if k < lam.size else np.nan for k in ks])
    finite = np.where(np.isfinite(gap), gap, -np.inf)
    best = int(ks[0]) if not np.isfinite(gap).any() else int(ks[finite == finite.max()].min())

    samples = np.zeros((n_shuffles, ks.size))
    if n_shuffles:
        if shuffle in LAYER_SHUFFLES:
            layered = native if isinstance(native, (LayeredInput, BlockInput)) else as_layered(graph)
            base = compacted_input(layered)

            def replicate(i):
                return shuffled_input(base, shuffle, seed, i)
        else:
            base = edge_input(native)

            def replicate(i):
                return edge_replicate(base, seed, i)

        def one(i):
            rep = replicate(i)
            if _n_kept(rep) < top:
                raise ValueError(f"null replicate {i} has fewer non-isolated nodes ({_n_kept(rep)}) than "
                                 f"max(ks) = {top}")
            out = _run(rep, ks, top, n_init=n_init, tol=tol, seed=int(_core.replicate_seed(seed, i)), n_threads=1)
            return np.asarray(out["ncut"])

        from tqdm.auto import tqdm

        disable = None if progress is None else not progress
        with tqdm(total=n_shuffles, desc=f"{shuffle} null sweep", unit="shuffle", disable=disable,
                  leave=False) as bar, ThreadPoolExecutor(max_workers=threads) as pool:
            for i, row in enumerate(pool.map(one, range(n_shuffles))):
                samples[i] = row
                bar.update(1)
        stats = [null_statistics(float(r["ncut"][j]), samples[:, j]) for j in range(ks.size)]
        mean = np.array([s["mean"] for s in stats])
        std = np.array([s["std"] for s in stats])
        z = np.array([s["zscore"] for s in stats])
        pct = np.array([s["percentile"] for s in stats])
    else:
        mean = std = z = pct = np.full(ks.size, np.nan)
    info = {**solver_info(r), **graph_info(graph)}
    return Sweep(ks=ks, ncut=r["ncut"], labels=r["labels"], inertia=r["inertia"], eigenvalues=lam, eigengap=gap,
                 best_k_eigengap=best, null_samples=samples, null_mean=mean, null_std=std, z=z, percentile=pct,
                 shuffle=shuffle if n_shuffles else None, seed=seed, n_init=n_init, tol=tol, n_shuffles=n_shuffles,
                 info=info)
