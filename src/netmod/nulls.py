"""Weight-shuffled null distributions: is a network more modular than chance?"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats

from ._native import core as _core
from .graphs import LayeredInput, as_layered, check_int, for_kernel
from .results import _frozen, _plain, versions
from .spectral import (
    DEFAULT_TOL,
    _check_seed,
    _check_threads,
    _check_tol,
    spectral_clustering,
)

# Wall time one native call of shuffle_null aims at: short enough for Ctrl-C
# to act within a second, long enough that threads seldom idle at its end.
CHUNK_SECONDS = 0.25

__all__ = [
    "NullDistribution",
    "combine_percentiles",
    "null_statistics",
    "replicate_seed",
    "shuffle_null",
    "shuffled_weights",
]

METHODS = ("layer", "nonzero")
STATISTICS = ("ncut", "modularity")
CLUSTERINGS = ("spectral", "leiden", "louvain")


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def null_statistics(observed: float, samples: Sequence[float], *, higher_is_modular: bool = False) -> dict:
    """Where an observed n-cut falls in a null distribution (REFERENCE.md 4).

    Parameters
    ----------
    observed : float
    samples : sequence of float
        The null samples (at least one).
    higher_is_modular : bool, default False
        False for n-cut (lower = more modular); True for modularity Q, where
        the percentile counts samples above the observed value instead.

    Returns
    -------
    dict
        ``mean``, ``std`` (population), ``zscore`` = (observed - mean) / std
        (nan when std is 0), ``percentile`` = (#{samples < observed} + 1) /
        (n + 1) with strict inequality, ``significant`` = observed below every
        sample.

    Examples
    --------
    >>> s = null_statistics(1.0, [2.0, 3.0, 4.0])
    >>> s["percentile"], s["significant"], round(s["zscore"], 4)
    (0.25, True, -2.4495)
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"samples must be a non-empty 1-D sequence, got shape {x.shape}")
    mean = float(x.mean())
    std = float(x.std())
    z = (observed - mean) / std if std > 0 else math.nan
    if higher_is_modular:
        beyond = int(np.count_nonzero(x > observed))
        significant = bool(observed > x.max())
    else:
        beyond = int(np.count_nonzero(x < observed))
        significant = bool(observed < x.min())
    return {
        "mean": mean,
        "std": std,
        "zscore": float(z),
        "percentile": (beyond + 1) / (x.size + 1),
        "significant": significant,
    }


def combine_percentiles(percentiles: Sequence[float], n_shuffles: int) -> float:
    """Fisher's combination of several networks' percentiles (as in the 2021 code).

    Each percentile is first shifted down by half the smallest possible
    value, 0.5 / (n_shuffles + 1), so that a network below every shuffle
    does not count as p = 1/(n+1) exactly; then
    ``scipy.stats.combine_pvalues(..., method="fisher")``.

    Examples
    --------
    >>> p = combine_percentiles([1 / 51, 1 / 51, 1 / 51], 50)
    >>> f"{p:.3e}"
    '1.047e-04'
    """
    n_shuffles = check_int(n_shuffles, "n_shuffles", 1)
    p = np.asarray(percentiles, dtype=np.float64) - 0.5 / (n_shuffles + 1)
    if p.ndim != 1 or p.size == 0 or (p <= 0).any() or (p > 1).any():
        raise ValueError("percentiles must be a non-empty 1-D sequence in [1/(n+1), 1]")
    return float(scipy.stats.combine_pvalues(p, method="fisher").pvalue)


@dataclass(frozen=True)
class NullDistribution:
    """An observed n-cut and the n-cuts of weight-shuffled copies of the network.

    Attributes
    ----------
    observed : float
        n-cut of the network's own spectral partition.
    samples : ndarray of float64, shape (n_shuffles,)
        n-cut of each shuffled network, replicate order.
    method : str
        "layer" (all entries of each weight matrix permuted) or "nonzero"
        (values permuted among the non-zero positions).
    n_clusters, n_shuffles, seed, n_init, tol
        The settings that produced it.
    statistic, clustering : str
        What was measured ("ncut" or "modularity") of which partition
        ("spectral", "leiden" or "louvain"). For modularity the percentile
        counts shuffles with a higher Q and `significant` means above all.
    versions : dict
    """

    observed: float
    samples: np.ndarray
    method: str
    n_clusters: int
    n_shuffles: int
    seed: int
    n_init: int
    tol: float
    statistic: str = "ncut"
    clustering: str = "spectral"
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", _frozen(np.asarray(self.samples, dtype=np.float64)))

    @functools.cached_property
    def _stats(self) -> dict:
        # Computed once: the fields are frozen, so the statistics cannot go stale.
        return null_statistics(self.observed, self.samples, higher_is_modular=self.statistic == "modularity")

    @property
    def mean(self) -> float:
        return self._stats["mean"]

    @property
    def std(self) -> float:
        """Population standard deviation of the samples."""
        return self._stats["std"]

    @property
    def zscore(self) -> float:
        return self._stats["zscore"]

    @property
    def percentile(self) -> float:
        """(#{samples more modular than observed} + 1) / (n + 1): a one-sided p-value."""
        return self._stats["percentile"]

    @property
    def significant(self) -> bool:
        """Observed more modular than every shuffle (the 2020 paper's criterion)."""
        return self._stats["significant"]

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version, with the derived statistics."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        stats = dict(self._stats)
        if math.isnan(stats["zscore"]):
            stats["zscore"] = None
        out.update(stats)
        return out

    def __repr__(self) -> str:
        return (
            f"NullDistribution(method={self.method!r}, statistic={self.statistic!r}, "
            f"clustering={self.clustering!r}, observed={self.observed:.4f}, "
            f"mean={self.mean:.4f}, zscore={self.zscore:.2f}, percentile={self.percentile:.4f}, "
            f"n_shuffles={self.n_shuffles})"
        )


def replicate_seed(seed: int, index: int) -> int:
    """The clustering seed of null replicate ``index`` under ``seed``.

    Examples
    --------
    >>> replicate_seed(0, 1) == replicate_seed(0, 1) != replicate_seed(0, 2)
    True
    """
    return int(_core.replicate_seed(_check_seed(seed), check_int(index, "index", 0)))


def shuffled_weights(graph: Any, *, method: str = "layer", seed: int = 0, index: int = 0) -> list:
    """The weights of one replicate of :func:`shuffle_null`.

    Parameters
    ----------
    graph : torch.nn.Module, igraph.Graph or sequence of ndarray
        A torch MLP, a graph made by :func:`netmod.from_torch` /
        :func:`netmod.from_layers`, or (in, out) weight matrices.
    method : {"layer", "nonzero"}
    seed, index : int
        As in :func:`shuffle_null`; replicate ``index``.

    Returns
    -------
    list of ndarray
        Signed (in, out) matrices of the network without its zero-degree
        units, each permuted per ``method``.

    Examples
    --------
    >>> import numpy as np
    >>> w = [np.array([[1.0, 0.0], [2.0, 3.0]])]
    >>> s = shuffled_weights(w, method="nonzero", seed=0, index=0)[0]
    >>> bool((s != 0).sum() == 3 and sorted(s.ravel()) == [0.0, 1.0, 2.0, 3.0])
    True
    """
    layered = as_layered(graph)
    return list(
        _core.shuffled_layers(
            list(layered.weights),
            method=_check_method(method),
            seed=_check_seed(seed),
            index=check_int(index, "index", 0),
        )
    )


def shuffle_null(
    graph: Any,
    *,
    n_shuffles: int = 100,
    method: str = "layer",
    n_clusters: int = 12,
    seed: int | None = 0,
    n_threads: int | None = None,
    n_init: int = 10,
    tol: float = DEFAULT_TOL,
    progress: bool | None = None,
    statistic: str = "ncut",
    clustering: str = "spectral",
) -> NullDistribution:
    """n-cut of a network against the n-cuts of its weight-shuffled copies.

    Each layer's signed weights (after removing zero-degree units) are
    permuted (``method="layer"``: all entries, zeros included;
    ``"nonzero"``: among the non-zero positions, keeping the sparsity mask),
    units isolated by the shuffle are dropped, and the shuffled network is
    clustered with the same settings as the observed one. Replicates run in
    C++ threads; replicate i draws from seeds derived from (seed, i), so the
    samples are the same for any ``n_threads``.

    Parameters
    ----------
    graph : torch.nn.Module, igraph.Graph or sequence of ndarray
        A torch MLP, a graph made by :func:`netmod.from_torch` /
        :func:`netmod.from_layers`, or (in, out) weight matrices.
    n_shuffles : int, default 100
    method : {"layer", "nonzero"}, default "layer"
        Always report which: for pruned networks "nonzero" is the stricter null.
    n_clusters : int, default 12
    seed : int or None, default 0
        None draws one (recorded in the result).
    n_threads : int or None
        Worker threads; None = all cores.
    n_init : int, default 10
        k-means restarts per clustering.
    tol : float, default 1e-8
        Eigenvector residual bound (see :func:`netmod.spectral_clustering`).
    progress : bool or None
        tqdm progress bar; None shows it only on a terminal.
    statistic : {"ncut", "modularity"}, default "ncut"
        What is recorded of each partition: its n-cut or its weighted
        modularity Q.
    clustering : {"spectral", "leiden", "louvain"}, default "spectral"
        How each network is partitioned. Anything but spectral n-cut runs one
        replicate at a time in Python (Leiden and Louvain hold the GIL), on
        the same shuffles (:func:`shuffled_weights`) and replicate seeds.

    Returns
    -------
    NullDistribution

    Raises
    ------
    TypeError, ValueError
        For graphs without layer structure or parameters out of range.
    KeyboardInterrupt
        On Ctrl-C, within about a second; nothing is returned.

    Examples
    --------
    >>> from netmod.synthetic import glorot_weights
    >>> null = shuffle_null(glorot_weights([30, 20, 20, 10], seed=0), n_shuffles=8,
    ...                     n_clusters=3, progress=False)
    >>> null.samples.shape, null.method, 0.0 < null.percentile <= 1.0
    ((8,), 'layer', True)
    """
    layered = as_layered(graph)
    n_shuffles = check_int(n_shuffles, "n_shuffles", 1)
    method = _check_method(method)
    k = check_int(n_clusters, "n_clusters", 2, 2**63 - 1)
    n_init = check_int(n_init, "n_init", 1, 2**31 - 1)
    tol = _check_tol(tol)
    seed = _check_seed(seed)
    threads = _check_threads(n_threads)
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {type(progress).__name__}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if clustering not in CLUSTERINGS:
        raise ValueError(f"clustering must be one of {CLUSTERINGS}, got {clustering!r}")
    if statistic != "ncut" or clustering != "spectral":
        return _python_null(
            layered, n_shuffles=n_shuffles, method=method, n_clusters=k, seed=seed, n_init=n_init,
            tol=tol, threads=threads, progress=progress, statistic=statistic, clustering=clustering,
        )

    weights = list(for_kernel(LayeredInput(tuple(_core.compact_layers(list(layered.weights))))).weights)

    from tqdm.auto import tqdm

    samples = np.empty(n_shuffles)
    observed = None
    # The work goes to the kernel in chunks so that Ctrl-C is handled (Python
    # sees the signal between native calls) and the bar moves. The first
    # chunk is the observed network, clustered in the same pool with `seed`
    # (what spectral_clustering gives it), plus 2 * threads - 1 replicates;
    # later chunks are sized to take about CHUNK_SECONDS, in whole rounds of
    # the pool (a multiple of `threads`), and a short remainder joins the
    # chunk before it, so that threads seldom wait for each other at a
    # chunk's end. Seeds depend on the replicate index only, so the chunking
    # changes nothing in the samples.
    chunk = 2 * threads - 1
    start = 0
    with tqdm(total=n_shuffles, desc=f"{method} null", unit="shuffle", disable=None if progress is None else not progress, leave=False) as bar:
        while start < n_shuffles:
            count = min(chunk, n_shuffles - start)
            began = time.perf_counter()
            out = _core.null_samples(
                weights,
                method=method,
                seed=seed,
                start=start,
                count=count,
                n_clusters=k,
                n_init=n_init,
                tol=tol,
                n_threads=threads,
                observed=observed is None,
            )
            per_task = (time.perf_counter() - began) / len(out)  # wall time, all threads working
            if observed is None:
                observed, out = float(out[0]), out[1:]
            samples[start : start + count] = out
            start += count
            bar.update(count)
            chunk = max(1, min(4096, int(CHUNK_SECONDS / max(per_task, 1e-9))) // threads) * threads
            if n_shuffles - start - chunk < chunk // 2:
                chunk = n_shuffles - start
    return NullDistribution(
        observed=float(observed),
        samples=samples,
        method=method,
        n_clusters=k,
        n_shuffles=n_shuffles,
        seed=seed,
        n_init=n_init,
        tol=tol,
    )


def _python_null(layered, *, n_shuffles, method, n_clusters, seed, n_init, tol, threads, progress,
                 statistic, clustering) -> NullDistribution:
    """Replicates one at a time in Python, on the kernel's shuffles and seeds."""
    from tqdm.auto import tqdm

    from .communities import leiden, louvain, modularity
    from .graphs import from_layers

    def score(weights, rseed):
        g = from_layers(list(weights))
        if clustering == "spectral":
            p = spectral_clustering(g, n_clusters=n_clusters, seed=rseed, n_init=n_init, tol=tol,
                                    n_threads=threads)
        elif clustering == "leiden":
            p = leiden(g, objective="modularity", seed=rseed % 2**63)
        else:
            p = louvain(g, seed=rseed % 2**63)
        return p.ncut if statistic == "ncut" else modularity(g, p.labels)

    weights = list(_core.compact_layers(list(layered.weights)))
    observed = score(weights, seed)
    samples = np.empty(n_shuffles)
    disable = None if progress is None else not progress
    with tqdm(total=n_shuffles, desc=f"{method} null ({clustering} {statistic})", unit="shuffle",
              disable=disable, leave=False) as bar:
        for i in range(n_shuffles):
            shuffled = _core.shuffled_layers(weights, method=method, seed=seed, index=i)
            samples[i] = score(shuffled, int(_core.replicate_seed(seed, i)))
            bar.update(1)
    return NullDistribution(
        observed=float(observed), samples=samples, method=method, n_clusters=n_clusters,
        n_shuffles=n_shuffles, seed=seed, n_init=n_init, tol=tol, statistic=statistic,
        clustering=clustering,
    )
