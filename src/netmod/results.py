"""Frozen result objects: what was computed, and how to reproduce it."""

from __future__ import annotations

import dataclasses
import functools
import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Embedding", "Partition", "versions"]


def versions() -> dict[str, str]:
    """Versions of netmod and the libraries that shape its numbers.

    Returns
    -------
    dict
        Package name -> version string, plus the Python version and
        ``simd``: which build of the native kernel computed the numbers
        (``avx2+fma`` or the portable ``sse2``/``baseline``; see
        ``netmod._native``).

    Examples
    --------
    >>> import netmod
    >>> sorted(netmod.versions())[:2]
    ['igraph', 'netmod']
    """
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> tuple:
    from importlib import metadata

    from ._native import core

    out = {"python": platform.python_version(), "simd": str(core.simd)}
    for name in ("netmod", "numpy", "scipy", "igraph"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return tuple(sorted(out.items()))


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Partition:
    """A partition of a graph's nodes into clusters.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_nodes,)
        Cluster of each node, numbered 0..n_clusters-1 from the largest
        cluster down (ties: the cluster holding the lowest node first); -1 for
        zero-degree nodes, which are left out of the clustering.
    n_clusters : int
        Number of clusters asked for.
    ncut : float
        Normalised cut of the partition (lower = more modular), in
        [0, n_clusters].
    eigenvalues : ndarray of float64, shape (n_clusters,)
        The smallest eigenvalues of the symmetric normalised Laplacian of the
        graph without its zero-degree nodes, ascending.
    method : str
        "spectral".
    seed, n_init, tol : int, int, float
        The settings that produced it.
    info : dict
        How it was computed: eigensolver, operator applications, residual,
        number of connected components.
    versions : dict
        Package versions at the time.
    """

    labels: np.ndarray
    n_clusters: int
    ncut: float
    eigenvalues: np.ndarray
    method: str
    seed: int
    n_init: int
    tol: float
    info: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(np.asarray(self.labels, dtype=np.int64)))
        object.__setattr__(self, "eigenvalues", _frozen(np.asarray(self.eigenvalues, dtype=np.float64)))

    @property
    def sizes(self) -> np.ndarray:
        """Number of nodes in each cluster, cluster 0 first."""
        kept = self.labels[self.labels >= 0]
        return np.bincount(kept, minlength=self.n_clusters)

    def modularity(self, graph: Any, *, resolution: float = 1.0) -> float:
        """Weighted modularity Q of this partition on ``graph`` (weights |w|).

        The n-cut of the partition on any graph is ``netmod.ncut(graph,
        p.labels)`` (``p.ncut`` holds it for the graph it was computed on).

        Examples
        --------
        >>> import numpy as np, netmod
        >>> a = np.kron(np.eye(2), np.ones((3, 3))) - np.eye(6)
        >>> p = netmod.spectral_clustering(a, n_clusters=2)
        >>> round(p.modularity(a), 6), p.ncut
        (0.5, 0.0)
        """
        from .communities import modularity

        return modularity(graph, self.labels, resolution=resolution)

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version of the result."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        return (
            f"Partition(method={self.method!r}, n_clusters={self.n_clusters}, "
            f"ncut={self.ncut:.6f}, n_nodes={self.labels.size}, seed={self.seed})"
        )


@dataclass(frozen=True)
class Embedding:
    """Eigenpairs of the symmetric normalised Laplacian of a graph.

    Attributes
    ----------
    eigenvalues : ndarray of float64, shape (n_components,)
        Smallest eigenvalues of I - D^-1/2 A D^-1/2 on the nodes with non-zero
        degree, ascending.
    vectors : ndarray of float64, shape (n_nodes, n_components)
        Orthonormal eigenvectors (columns); rows of zero-degree nodes are 0.
    kept : ndarray of bool, shape (n_nodes,)
        True for the nodes with non-zero degree.
    seed, tol : int, float
        The settings that produced it.
    info : dict
        Eigensolver details.
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    kept: np.ndarray
    seed: int
    tol: float
    info: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        for name in ("eigenvalues", "vectors", "kept"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version of the result."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
