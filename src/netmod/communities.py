"""Community detection by Leiden and Louvain, as netmod Partitions.

Both igraph's built-in Leiden and the leidenalg reference implementation are
wrapped so that they agree with the rest of netmod: edge weights are |w|
(never signed), the objective is always passed explicitly (igraph's default,
CPM at resolution 1, splits an MLP graph into hundreds of clusters),
zero-degree nodes get label -1, clusters are numbered from the largest, and
runs are seeded without disturbing anyone else's random numbers.

Seeding igraph: python-igraph draws the random numbers of its algorithms
from a generator per thread: in the main thread by default Python's
``random`` module, in other threads igraph's own C generator, which cannot be
seeded from Python. netmod installs, once per thread, a generator that
behaves exactly like the main thread's default (it forwards to the ``random``
module) except inside a seeded netmod call, where the calling thread draws
from its own ``random.Random(seed)``. So a seeded call neither reads nor
changes ``random``'s state, calls in other threads are unaffected, and code
outside netmod sees igraph draw from ``random`` as before. If igraph's main
generator has been replaced (``igraph.set_random_number_generator``), netmod
cannot seed it without overriding the user's choice, and says so. (python-igraph
keeps one Python-level generator for all threads, so installing netmod's in a
worker thread also replaces one that the user set after netmod first ran.)
"""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from typing import Any

import igraph as ig
import numpy as np

from ._validate import check_choice, check_real, check_seed
from .graphs import to_igraph
from .results import Partition
from .spectral import ncut as _ncut

__all__ = ["leiden", "louvain", "modularity"]

OBJECTIVES = ("modularity", "rb", "cpm")
BACKENDS = ("igraph", "leidenalg")


class _SeededDraws:
    """igraph's generator: the ``random`` module, except in threads inside a seeded netmod call."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _source(self) -> Any:
        return getattr(self._local, "rng", None) or random

    def random(self) -> float:
        return self._source().random()

    def randint(self, a: int, b: int) -> int:
        return self._source().randint(a, b)

    def gauss(self, mu: float, sigma: float) -> float:
        return self._source().gauss(mu, sigma)

    def getrandbits(self, k: int) -> int:
        return self._source().getrandbits(k)

    @contextmanager
    def seeded(self, seed: int):
        previous = getattr(self._local, "rng", None)
        self._local.rng = rng = random.Random(seed)
        try:
            yield rng
        finally:
            self._local.rng = previous


_DRAWS = _SeededDraws()
_INSTALL_LOCK = threading.Lock()


def _probe(rng: Any) -> bool:
    """Whether one small random igraph call draws from ``rng`` (a Random or the module).

    The ``random`` module's state is restored afterwards, so the probe leaves
    no trace on it whoever serves igraph.
    """
    state = random.getstate()
    before = rng.getstate()
    try:
        ig.Graph.Erdos_Renyi(n=8, p=0.5)
        return rng.getstate() != before
    finally:
        random.setstate(state)


@contextmanager
def _seeded(seed: int):
    """Run igraph's random algorithms in this thread from ``random.Random(seed)``."""
    with _INSTALL_LOCK:
        with _DRAWS.seeded(0) as rng:
            ours = _probe(rng)
        if not ours:
            # In the main thread igraph must still be on its default, the random
            # module; a worker thread starts on igraph's own C generator.
            if threading.current_thread() is threading.main_thread() and not _probe(random):
                raise RuntimeError(
                    "igraph's random number generator was replaced (igraph.set_random_number_generator), "
                    "so netmod cannot seed igraph's Leiden or Louvain without overriding it; use "
                    "leiden(..., backend='leidenalg'), or give igraph back its default with "
                    "igraph.set_random_number_generator(random)"
                )
            ig.set_random_number_generator(_DRAWS)
    with _DRAWS.seeded(seed):
        yield


def _live_subgraph(g: ig.Graph) -> tuple[ig.Graph, np.ndarray]:
    strength = np.asarray(g.strength(weights="weight"), dtype=np.float64)
    live = np.flatnonzero(strength > 0)
    if live.size == 0:
        raise ValueError("graph has no edges (all weights are zero): there are no communities to find")
    return (g if live.size == g.vcount() else g.induced_subgraph(live.tolist())), live


def _partition(g: ig.Graph, live: np.ndarray, membership: Any, method: str, seed: int,
               info: dict) -> Partition:
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


def _check_resolution(resolution: Any) -> float:
    return check_real(resolution, "resolution", minimum=0.0)


def modularity(graph: Any, labels: Any, *, resolution: float = 1.0) -> float:
    """Weighted modularity Q of a partition (label -1 nodes have degree 0 and add nothing).

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
        As for :func:`netmod.spectral_clustering`; weights |w|.
    labels : array_like of int, shape (n_nodes,)
        Cluster of each node (a Partition's ``labels``); -1 only on
        zero-degree nodes.
    resolution : float, default 1.0
        The resolution gamma of Q = sum_c [w_c / W - gamma (d_c / 2W)^2].

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
    seed: int | None = 0,
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
        Resolution of "rb" and "cpm". "modularity" is Q at resolution 1:
        any other value is an error (use "rb" for another resolution).
    seed : int or None, default 0
        Seeds this call only (see the module notes); None draws one, recorded
        in the result. leidenalg receives ``seed % 2**63``.
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
    objective = check_choice(objective, "objective", OBJECTIVES)
    backend = check_choice(backend, "backend", BACKENDS)
    resolution = _check_resolution(resolution)
    if objective == "modularity" and resolution != 1.0:
        raise ValueError(
            f"resolution must be 1 for objective='modularity' (Q is defined at resolution 1), got "
            f"{resolution:g}; use objective='rb' for modularity at another resolution"
        )
    seed = check_seed(seed)
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, (int, np.integer)) or n_iterations == 0:
        raise ValueError(f"n_iterations must be a non-zero integer (negative = until stable), got {n_iterations!r}")
    g = to_igraph(graph)
    sub, live = _live_subgraph(g)
    if backend == "igraph":
        with _seeded(seed):
            membership = sub.community_leiden(
                objective_function="CPM" if objective == "cpm" else "modularity",
                weights="weight",
                resolution=resolution,
                n_iterations=int(n_iterations),
            ).membership
    else:
        import leidenalg

        kind = {
            "modularity": leidenalg.ModularityVertexPartition,
            "rb": leidenalg.RBConfigurationVertexPartition,
            "cpm": leidenalg.CPMVertexPartition,
        }[objective]
        extra = {} if objective == "modularity" else {"resolution_parameter": resolution}
        membership = leidenalg.find_partition(
            sub, kind, weights="weight", n_iterations=int(n_iterations), seed=seed % 2**63, **extra
        ).membership
    info = {"objective": objective, "backend": backend, "resolution": resolution,
            "n_iterations": int(n_iterations)}
    return _partition(g, live, membership, "leiden", seed, info)


def louvain(graph: Any, *, resolution: float = 1.0, seed: int | None = 0) -> Partition:
    """Louvain (multilevel) modularity optimisation, igraph's implementation.

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
        As for :func:`netmod.spectral_clustering`; weights |w|.
    resolution : float, default 1.0
        Resolution of the modularity that is optimised.
    seed : int or None, default 0
        Seeds this call only (see the module notes); None draws one.

    Returns
    -------
    Partition
        ``method`` is "louvain".

    Examples
    --------
    >>> import numpy as np
    >>> a = np.kron(np.eye(2), np.ones((4, 4))) - np.eye(8)
    >>> louvain(a).labels.tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    """
    resolution = _check_resolution(resolution)
    seed = check_seed(seed)
    g = to_igraph(graph)
    sub, live = _live_subgraph(g)
    with _seeded(seed):
        membership = sub.community_multilevel(weights="weight", resolution=resolution).membership
    return _partition(g, live, membership, "louvain", seed, {"resolution": resolution, "backend": "igraph"})
