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
import scipy.sparse as sp
import scipy.stats

from ._executor import check_executor
from ._native import core as _core
from ._validate import (
    check_choice,
    check_int,
    check_optional_bool,
    check_seed,
    check_threads,
    check_tol,
)
from .graphs import BlockInput, CsrInput, LayeredInput, as_layered, as_native, block_input, for_kernel, graph_info
from .results import frozen_array, to_plain, versions
from .spectral import DEFAULT_TOL, spectral_clustering

# Wall time one native call of shuffle_null aims at: short enough for Ctrl-C
# to act within a second, long enough that threads seldom idle at its end.
CHUNK_SECONDS = 0.25

__all__ = [
    "NullDistribution",
    "combine_percentiles",
    "empirical_p",
    "null_statistics",
    "replicate_seed",
    "shuffle_null",
    "shuffled_weights",
]

SHUFFLES = ("layer", "nonzero", "edges")
LAYER_SHUFFLES = ("layer", "nonzero")
STATISTICS = ("ncut", "modularity")
METHODS = ("spectral", "leiden", "louvain")
ALTERNATIVES = ("less", "greater")


def empirical_p(observed: float, samples: Sequence[float], *, alternative: str) -> float:
    """One-sided empirical p-value of ``observed`` against ``samples``; ties count against the claim.

    The one rule netmod uses for every null (shuffled networks, random
    lesions): ``alternative="less"`` tests the claim that ``observed`` lies
    below the samples (an n-cut lower than its shuffles'), and p = (#{samples
    <= observed} + 1) / (n + 1); ``"greater"`` tests the claim that it lies
    above them (a modularity Q, an accuracy drop), and p = (#{samples >=
    observed} + 1) / (n + 1). A sample equal to the observed value counts as
    one that is at least as extreme, so ties can only make p larger
    (conservative). Non-finite samples are left out; p is nan for a
    non-finite ``observed``. The smallest possible p, 1/(n + 1), means the
    observed value is beyond every sample.

    Values that agree to within ``TIE_RTOL`` (1e-9) relative to the largest
    magnitude involved are ties: an n-cut is a sum over every edge, and two
    networks whose partitions are the same up to round-off (a shuffle that
    keeps every block's total, clustered by whole layers) differ only in its
    last bits, which must not decide significance.

    Examples
    --------
    >>> empirical_p(1.0, [2.0, 3.0, 4.0], alternative="less")
    0.25
    >>> empirical_p(2.0, [2.0, 3.0, 4.0], alternative="less")  # a tie counts against
    0.5
    """
    check_choice(alternative, "alternative", ALTERNATIVES)
    if not math.isfinite(observed):
        return math.nan
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    tol = _tie_tolerance(observed, x)
    if alternative == "less":
        beyond = np.count_nonzero(x <= observed + tol)
    else:
        beyond = np.count_nonzero(x >= observed - tol)
    return (int(beyond) + 1) / (x.size + 1)


# Relative difference below which two statistics count as equal (see empirical_p).
TIE_RTOL = 1e-9


def _tie_tolerance(observed: float, x: np.ndarray) -> float:
    scale = max(abs(observed), float(np.abs(x).max()) if x.size else 0.0)
    return TIE_RTOL * scale


def null_statistics(observed: float, samples: Sequence[float], *, higher_is_modular: bool = False) -> dict:
    """Where an observed n-cut falls in a null distribution (REFERENCE.md 4).

    Parameters
    ----------
    observed : float
    samples : sequence of float
        The null samples (at least one).
    higher_is_modular : bool, default False
        False for n-cut (lower = more modular); True for modularity Q, where
        the percentile counts samples at or above the observed value instead.

    Returns
    -------
    dict
        ``mean``, ``std`` (population), ``zscore`` = (observed - mean) / std
        (nan when the samples do not vary beyond round-off, ``TIE_RTOL``),
        ``percentile`` = :func:`empirical_p`, i.e.
        (#{samples <= observed} + 1) / (n + 1) for n-cut (a tie counts
        against the network), and ``significant`` = more modular than every
        sample (percentile = 1/(n + 1)).

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
    finite = x[np.isfinite(x)]
    tol = _tie_tolerance(observed, finite) if math.isfinite(observed) else 0.0
    z = (observed - mean) / std if std > tol else math.nan
    percentile = empirical_p(observed, x, alternative="greater" if higher_is_modular else "less")
    return {
        "mean": mean,
        "std": std,
        "zscore": float(z),
        "percentile": percentile,
        "significant": bool(observed > x.max() + tol if higher_is_modular else observed < x.min() - tol),
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
    """An observed statistic and the same statistic of weight-shuffled copies of the network.

    Attributes
    ----------
    observed : float
        The network's own statistic (by default the n-cut of its spectral
        partition).
    samples : ndarray of float64, shape (n_shuffles,)
        The statistic of each shuffled network, replicate order.
    shuffle : str
        The shuffle scheme: "layer" (all entries of each weight matrix
        permuted), "nonzero" (values permuted among the non-zero positions)
        or "edges" (all upper-triangle entries of the adjacency permuted).
    method : str
        The clustering algorithm that partitioned each network: "spectral",
        "leiden" or "louvain".
    statistic : str
        What was recorded of each partition: "ncut" (lower = more modular) or
        "modularity" (weighted Q, higher = more modular).
    n_clusters, n_shuffles, seed, n_init, tol
        The settings that produced it (``n_clusters``, ``n_init`` and ``tol``
        concern spectral clustering only).
    graph_info : dict
        How the graph's edge weights were made (``kernel_norm`` and ``include``
        of a :func:`netmod.from_torch` graph; empty for other graphs).
    versions : dict
    """

    observed: float
    samples: np.ndarray
    shuffle: str
    method: str
    statistic: str
    n_clusters: int
    n_shuffles: int
    seed: int
    n_init: int
    tol: float
    graph_info: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", frozen_array(self.samples, np.float64))

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
        """(#{samples at least as modular as observed} + 1) / (n + 1): a one-sided
        p-value; ties count against the network (:func:`empirical_p`)."""
        return self._stats["percentile"]

    @property
    def significant(self) -> bool:
        """Observed more modular than every shuffle (the 2020 paper's criterion)."""
        return self._stats["significant"]

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version, with the derived statistics (nan as None)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(self._stats)
        return to_plain(out)

    def __repr__(self) -> str:
        return (
            f"NullDistribution(shuffle={self.shuffle!r}, method={self.method!r}, "
            f"statistic={self.statistic!r}, observed={self.observed:.4f}, mean={self.mean:.4f}, "
            f"zscore={self.zscore:.2f}, percentile={self.percentile:.4f}, n_shuffles={self.n_shuffles})"
        )


def replicate_seed(seed: int, index: int) -> int:
    """The clustering seed of null replicate ``index`` under ``seed``.

    Examples
    --------
    >>> replicate_seed(0, 1) == replicate_seed(0, 1) != replicate_seed(0, 2)
    True
    """
    return int(_core.replicate_seed(check_seed(seed), check_int(index, "index", 0)))


def compacted_input(layered: LayeredInput | BlockInput) -> LayeredInput | BlockInput:
    """The network without its zero-degree units, in the same form (a block
    graph keeps its pairs; a layer left without units keeps empty blocks)."""
    if isinstance(layered, BlockInput):
        sizes, blocks = _core.compact_blocks(*layered.native_args())
        return block_input(sizes, layered.pairs, blocks)
    return LayeredInput(tuple(_core.compact_layers(list(layered.weights))))


def shuffled_input(compacted: LayeredInput | BlockInput, shuffle: str, seed: int,
                   index: int) -> LayeredInput | BlockInput:
    """Replicate ``index`` of an already compacted network, in the same form."""
    if isinstance(compacted, BlockInput):
        sizes, blocks = _core.shuffled_blocks(*compacted.native_args(), method=shuffle, seed=seed, index=index)
        return block_input(sizes, compacted.pairs, blocks)
    return LayeredInput(tuple(_core.shuffled_layers(list(compacted.weights), method=shuffle, seed=seed,
                                                    index=index)))


def edge_input(graph: Any) -> CsrInput:
    """Any graph as the symmetric CSR adjacency the edge null permutes."""
    native = as_native(graph)
    if isinstance(native, CsrInput):
        return native
    if isinstance(native, LayeredInput):
        sizes = native.sizes
        pairs = [(l, l + 1) for l in range(len(native.weights))]
        blocks = native.weights
    else:
        sizes, pairs, blocks = native.sizes, native.pairs, native.blocks
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])
    rows, cols, vals = [], [], []
    for (a, b), w in zip(pairs, blocks):
        r, c = np.nonzero(w)
        rows += [offsets[a] + r, offsets[b] + c]
        cols += [offsets[b] + c, offsets[a] + r]
        vals += [np.abs(w[r, c])] * 2
    cat = (lambda x, dt: np.concatenate(x).astype(dt)) if rows else (lambda x, dt: np.zeros(0, dt))
    m = sp.csr_matrix((cat(vals, np.float64), (cat(rows, np.int64), cat(cols, np.int64))), shape=(n, n))
    return as_native(m)


def edge_replicate(graph: Any, seed: int, index: int) -> CsrInput:
    """Replicate ``index`` of the edge null of ``graph`` (its non-isolated nodes only)."""
    csr = edge_input(graph)
    kept, _, values = _core.edge_shuffled(csr.indptr, csr.indices, csr.data, seed=seed, index=index)
    n = kept.size
    a = np.zeros((n, n))
    a[np.triu_indices(n, 1)] = values
    return as_native(a + a.T)


def shuffled_weights(graph: Any, *, shuffle: str = "layer", seed: int | None = 0, index: int = 0) -> list:
    """The weights of one replicate of :func:`shuffle_null`.

    Parameters
    ----------
    graph : torch.nn.Module, igraph.Graph or sequence of ndarray
        A torch MLP, a graph made by :func:`netmod.from_torch` /
        :func:`netmod.from_layers` / :func:`netmod.from_blocks`, or (in, out)
        weight matrices.
    shuffle : {"layer", "nonzero"}
    seed, index : int
        As in :func:`shuffle_null`; replicate ``index``.

    Returns
    -------
    list of ndarray
        Signed (in, out) matrices of the network without its zero-degree
        units, each permuted per ``shuffle``; for a block graph its blocks,
        in the order of its pairs, of shape (compacted sizes[src], sizes[dst]).

    Examples
    --------
    >>> import numpy as np
    >>> w = [np.array([[1.0, 0.0], [2.0, 3.0]])]
    >>> s = shuffled_weights(w, shuffle="nonzero", seed=0, index=0)[0]
    >>> bool((s != 0).sum() == 3 and sorted(s.ravel()) == [0.0, 1.0, 2.0, 3.0])
    True
    """
    layered = as_layered(graph)
    shuffle = check_choice(shuffle, "shuffle", LAYER_SHUFFLES)
    seed = check_seed(seed)
    index = check_int(index, "index", 0)
    if isinstance(layered, BlockInput):
        return list(_core.shuffled_blocks(*layered.native_args(), method=shuffle, seed=seed, index=index)[1])
    return list(_core.shuffled_layers(list(layered.weights), method=shuffle, seed=seed, index=index))


def shuffle_null(
    graph: Any,
    *,
    n_shuffles: int = 100,
    shuffle: str = "layer",
    method: str = "spectral",
    statistic: str = "ncut",
    n_clusters: int = 12,
    seed: int | None = 0,
    n_threads: int | None = None,
    n_init: int = 10,
    tol: float = DEFAULT_TOL,
    progress: bool | None = None,
    executor: Any = None,
    chunk_size: int | None = None,
) -> NullDistribution:
    """A network's modularity against that of its weight-shuffled copies.

    Each layer's signed weights (each block's, for a :func:`netmod.from_blocks`
    graph; after removing zero-degree units) are
    permuted (``shuffle="layer"``: all entries, zeros included;
    ``"nonzero"``: among the non-zero positions, keeping the sparsity mask),
    units isolated by the shuffle are dropped, and the shuffled network is
    partitioned with the same settings as the observed one. ``shuffle="edges"``
    (the 2021 null of activation graphs, for any graph) instead permutes all
    n(n-1)/2 entries of the upper triangle of the adjacency among the graph's
    n non-isolated nodes (zeros included) and mirrors them. Replicates run in
    C++ threads; replicate i draws from seeds derived from (seed, i), so the
    samples are the same for any ``n_threads``.

    Parameters
    ----------
    graph : torch.nn.Module, igraph.Graph or sequence of ndarray
        A torch MLP, a graph made by :func:`netmod.from_torch` /
        :func:`netmod.from_layers` / :func:`netmod.from_blocks`, or (in, out)
        weight matrices; with ``shuffle="edges"`` any graph netmod takes (an
        activation graph, a scipy or dense adjacency).
    n_shuffles : int, default 100
    shuffle : {"layer", "nonzero", "edges"}, default "layer"
        The shuffle scheme. Always report which: for pruned networks
        "nonzero" is the stricter null. "edges" makes every replicate a
        dense graph (memory about 20 n^2 bytes per thread).
    method : {"spectral", "leiden", "louvain"}, default "spectral"
        How each network is partitioned. Anything but spectral n-cut runs one
        replicate at a time in Python (Leiden and Louvain hold the GIL), on
        the same shuffles (:func:`shuffled_weights`) and replicate seeds.
    statistic : {"ncut", "modularity"}, default "ncut"
        What is recorded of each partition: its n-cut or its weighted
        modularity Q.
    n_clusters : int, default 12
        Clusters of the spectral partition.
    seed : int or None, default 0
        None draws one (recorded in the result).
    n_threads : int or None
        Worker threads; None = all cores.
    n_init : int, default 10
        k-means restarts per spectral clustering.
    tol : float, default 1e-8
        Eigenvector residual bound (see :func:`netmod.spectral_clustering`).
    progress : bool or None
        tqdm progress bar; None shows it only on a terminal.
    executor : concurrent.futures.Executor, optional
        Runs the replicates as tasks on this executor instead of in local
        threads: a ``ProcessPoolExecutor``, or a Dask cluster through
        ``distributed.Client(address).get_executor()`` (the weights are then
        scattered to the workers once). Each task clusters a chunk of
        consecutive replicates (the observed network is one more task) with
        ``n_threads`` threads, 1 by default. The samples are bit-identical
        to a local run for any executor, number of workers or chunk size.
        Spectral n-cut nulls only.
    chunk_size : int, optional
        Replicates per task (with an executor); by default about four tasks
        per worker.

    Returns
    -------
    NullDistribution
        The percentile counts ties against the network (:func:`empirical_p`).

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
    >>> null.samples.shape, null.shuffle, null.method, 0.0 < null.percentile <= 1.0
    ((8,), 'layer', 'spectral', True)
    """
    shuffle = check_choice(shuffle, "shuffle", SHUFFLES)
    layered = edge_input(graph) if shuffle == "edges" else as_layered(graph)
    n_shuffles = check_int(n_shuffles, "n_shuffles", 1)
    method = check_choice(method, "method", METHODS)
    statistic = check_choice(statistic, "statistic", STATISTICS)
    k = check_int(n_clusters, "n_clusters", 2, 2**63 - 1)
    n_init = check_int(n_init, "n_init", 1, 2**31 - 1)
    tol = check_tol(tol)
    seed = check_seed(seed)
    threads = check_threads(n_threads)
    progress = check_optional_bool(progress, "progress")
    settings = {"shuffle": shuffle, "method": method, "statistic": statistic, "n_clusters": k,
                "n_shuffles": n_shuffles, "seed": seed, "n_init": n_init, "tol": tol}
    if executor is not None:
        check_executor(executor)
        if statistic != "ncut" or method != "spectral":
            raise ValueError("executor= runs spectral n-cut nulls (method='spectral', statistic='ncut'); "
                             f"got method={method!r}, statistic={statistic!r}")
        if chunk_size is not None:
            chunk_size = check_int(chunk_size, "chunk_size", 1)
        task_threads = 1 if n_threads is None else threads
        observed, samples = _executor_null(layered, executor=executor, chunk_size=chunk_size, threads=task_threads,
                                           progress=progress, **settings)
        return NullDistribution(observed=observed, samples=samples, graph_info=graph_info(graph), **settings)
    if chunk_size is not None:
        raise ValueError("chunk_size applies to executor= runs only")
    if statistic != "ncut" or method != "spectral":
        observed, samples = _python_null(layered, threads=threads, progress=progress, **settings)
    else:
        observed, samples = _native_null(layered, threads=threads, progress=progress, **settings)
    return NullDistribution(observed=observed, samples=samples, graph_info=graph_info(graph), **settings)


def _native_null(layered, *, shuffle, n_clusters, n_shuffles, seed, n_init, tol, threads, progress,
                 **_) -> tuple:
    """Spectral n-cut replicates in the kernel's threads, in chunks (Ctrl-C, progress)."""
    from tqdm.auto import tqdm

    if isinstance(layered, CsrInput):
        csr = for_kernel(layered)

        def null_samples(method, **kw):
            return _core.edge_null_samples(csr.indptr, csr.indices, csr.data, **kw)
    elif isinstance(compacted := for_kernel(compacted_input(layered)), BlockInput):
        args = compacted.native_args()

        def null_samples(**kw):
            return _core.null_samples_blocks(*args, **kw)
    else:
        weights = list(compacted.weights)

        def null_samples(**kw):
            return _core.null_samples(weights, **kw)
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
    disable = None if progress is None else not progress
    with tqdm(total=n_shuffles, desc=f"{shuffle} null", unit="shuffle", disable=disable, leave=False) as bar:
        while start < n_shuffles:
            count = min(chunk, n_shuffles - start)
            began = time.perf_counter()
            out = null_samples(
                method=shuffle,
                seed=seed,
                start=start,
                count=count,
                n_clusters=n_clusters,
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
    return float(observed), samples


def _null_chunk(kind: str, data: Any, start: int, count: int, options: dict) -> np.ndarray:
    """One task of an executor null: the n-cuts of replicates start..start+count-1 (or, with
    options["observed"], of the observed network first). Module-level, so it pickles by name."""
    from ._native import core

    if kind == "blocks":
        return core.null_samples_blocks(*data, start=start, count=count, **options)
    if kind == "edges":
        options = {k: v for k, v in options.items() if k != "method"}
        return core.edge_null_samples(*data, start=start, count=count, **options)
    return core.null_samples(list(data), start=start, count=count, **options)


def _executor_null(layered, *, executor, chunk_size, shuffle, n_clusters, n_shuffles, seed, n_init, tol, threads,
                   progress, **_) -> tuple:
    """Replicate chunks as tasks on a concurrent.futures executor (Dask's too), bit-identical to local runs."""
    from tqdm.auto import tqdm

    from ._executor import run_tasks, share, worker_count

    if isinstance(layered, CsrInput):
        csr = for_kernel(layered)
        kind, data = "edges", (csr.indptr, csr.indices, csr.data)
    elif isinstance(compacted := for_kernel(compacted_input(layered)), BlockInput):
        kind, data = "blocks", tuple(compacted.native_args())
    else:
        kind, data = "layers", tuple(compacted.weights)
    data = share(executor, data)  # to every Dask worker once, not per task
    if chunk_size is None:
        chunk_size = max(1, -(-n_shuffles // (4 * worker_count(executor))))
    options = {"method": shuffle, "seed": seed, "n_clusters": n_clusters, "n_init": n_init, "tol": tol,
               "n_threads": threads}
    samples = np.empty(n_shuffles)
    observed = []
    tasks = [(None, _null_chunk, (kind, data, 0, 0, {**options, "observed": True}))]
    tasks += [(start, _null_chunk, (kind, data, start, min(chunk_size, n_shuffles - start),
                                    {**options, "observed": False}))
              for start in range(0, n_shuffles, chunk_size)]
    disable = None if progress is None else not progress
    with tqdm(total=n_shuffles, desc=f"{shuffle} null", unit="shuffle", disable=disable, leave=False) as bar:
        def on_result(start, out):
            out = np.asarray(out, dtype=np.float64)
            if start is None:
                observed.append(float(out[0]))
                return
            samples[start:start + out.size] = out
            bar.update(out.size)

        run_tasks(executor, tasks, on_result)
    return observed[0], samples


def _python_null(layered, *, shuffle, method, statistic, n_clusters, n_shuffles, seed, n_init, tol, threads,
                 progress) -> tuple:
    """Replicates one at a time in Python, on the kernel's shuffles and seeds."""
    from tqdm.auto import tqdm

    from .communities import leiden, louvain, modularity
    from .graphs import from_blocks, from_layers

    def score(native, rseed):
        if isinstance(native, CsrInput):
            g = sp.csr_matrix((native.data, native.indices, native.indptr), shape=(native.n_nodes,) * 2)
        elif isinstance(native, BlockInput):
            g = from_blocks(list(native.blocks), sizes=native.sizes, pairs=native.pairs)
        else:
            g = from_layers(list(native.weights))
        if method == "spectral":
            p = spectral_clustering(g, n_clusters=n_clusters, seed=rseed, n_init=n_init, tol=tol,
                                    n_threads=threads)
        elif method == "leiden":
            p = leiden(g, objective="modularity", seed=rseed)
        else:
            p = louvain(g, seed=rseed)
        return p.ncut if statistic == "ncut" else modularity(g, p.labels)

    if isinstance(layered, CsrInput):
        observed = score(layered, seed)

        def replicate(i):
            return edge_replicate(layered, seed, i)
    else:
        compacted = compacted_input(layered)
        observed = score(compacted, seed)

        def replicate(i):
            return shuffled_input(compacted, shuffle, seed, i)
    samples = np.empty(n_shuffles)
    disable = None if progress is None else not progress
    with tqdm(total=n_shuffles, desc=f"{shuffle} null ({method} {statistic})", unit="shuffle",
              disable=disable, leave=False) as bar:
        for i in range(n_shuffles):
            samples[i] = score(replicate(i), int(_core.replicate_seed(seed, i)))
            bar.update(1)
    return float(observed), samples
