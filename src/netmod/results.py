"""Frozen result objects: what was computed, and how to reproduce it."""

from __future__ import annotations

import dataclasses
import functools
import math
import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Embedding", "Partition", "frozen_array", "to_plain", "versions"]


def versions() -> dict[str, str]:
    """Versions of netmod and the libraries that shape its numbers.

    Returns
    -------
    dict
        Package name -> version string, plus the Python version and
        ``simd``: which build of the native kernel computed the numbers
        (``avx2+fma`` or the portable ``sse2``/``baseline``; see
        ``netmod._native``), and ``git_commit``: the commit of the netmod
        source tree the numbers came from, with ``+dirty`` when tracked files
        differ from it, or "none (installed package)" outside a git checkout.

    Examples
    --------
    >>> import netmod
    >>> sorted(netmod.versions())[:3]
    ['git_commit', 'igraph', 'netmod']
    """
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> tuple:
    from importlib import metadata

    from ._native import core

    out = {"python": platform.python_version(), "simd": str(core.simd), "git_commit": _git_commit()}
    for name in ("netmod", "numpy", "scipy", "igraph"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return tuple(sorted(out.items()))


def _git_commit() -> str:
    """The commit of the git checkout netmod runs from (``src/netmod`` of it), "+dirty" if tracked files differ."""
    import subprocess
    from pathlib import Path

    here = Path(__file__).resolve().parent
    none = "none (installed package)"

    def git(*args):
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if (top / "src" / "netmod").resolve() != here:
            return none
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return none
    return commit + ("+dirty" if dirty else "")


def frozen_array(a: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy of ``a`` (results never share or expose writable arrays)."""
    a = np.array(a, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


def to_plain(value: Any) -> Any:
    """``value`` as plain JSON-ready Python: arrays and numpy scalars to lists and
    numbers, tuples to lists, and NaN to None (JSON has no NaN)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and np.isnan(value).any():
            return to_plain(value.tolist())
        return value.tolist()
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
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
        Number of clusters: asked for (spectral) or found (Leiden, Louvain).
    ncut : float
        Normalised cut of the partition (lower = more modular), in
        [0, n_clusters].
    eigenvalues : ndarray of float64, shape (n_clusters,)
        The smallest eigenvalues of the symmetric normalised Laplacian of the
        graph without its zero-degree nodes, ascending (spectral only; empty
        for Leiden and Louvain).
    method : str
        The clustering algorithm: "spectral", "leiden" or "louvain".
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
        object.__setattr__(self, "labels", frozen_array(self.labels, np.int64))
        object.__setattr__(self, "eigenvalues", frozen_array(self.eigenvalues, np.float64))

    @property
    def sizes(self) -> np.ndarray:
        """Number of nodes in each cluster, cluster 0 first."""
        kept = self.labels[self.labels >= 0]
        return np.bincount(kept, minlength=self.n_clusters)

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version of the result."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

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
            object.__setattr__(self, name, frozen_array(getattr(self, name)))

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version of the result."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
