"""Node roles of a partition: participation coefficient and within-module degree z-score.

Guimera & Amaral (2005) place every node of a partitioned graph on two axes:
how much of its weight stays in its own module (the within-module degree
z-score ``z``) and how evenly its weight spreads over the modules (the
participation coefficient ``P``), and name seven roles from the two. netmod
computes them on weighted graphs (degree = strength, the sum of the node's
edge weights ``|w|``), on every graph form netmod takes, with sparse sums
whose memory is bounded by the graph's own weights: no loop over nodes or
edges, and layered graphs are read block by block, never expanded.

Conventions, where the paper leaves a value undefined (and where bctpy, the
reference implementation, returns a number):

* label -1 ("left out") is allowed only on zero-degree nodes, as in
  :func:`netmod.ncut` and :func:`netmod.modularity`; their P, z, strengths
  are NaN and their role is 0 ("none"). A node with edges labelled -1 is a
  ValueError, never a silent exclusion of its edges.
* a zero-degree node inside a module (label >= 0) has P = NaN (0/0; bctpy
  says 0, which would call it ultra-peripheral) and role 0; it is still a
  member of its module, with within-module strength 0, and its z is computed.
* a *flat* module, whose members' within-module strengths are all equal
  (a singleton, a regular module; judged with a relative tolerance of
  ``FLAT_RTOL`` so that sums equal in exact arithmetic count as equal) has
  z = 0 for every member: each member is exactly at the mean. bctpy gives 0
  when the standard deviation is exactly 0, but divides round-off by
  round-off otherwise (a triangle of weight-0.1 edges gets z = -1 for all
  three nodes there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validate import check_labels, check_real
from .graphs import BlockInput, CsrInput, LayeredInput, as_native, for_kernel
from .results import Partition, frozen_array, to_plain, versions

__all__ = ["FLAT_RTOL", "HUB_ZSCORE", "ROLE_NAMES", "NodeRoles", "node_roles"]

HUB_ZSCORE = 2.5
"""Guimera & Amaral's hub threshold: a node is a hub when z >= 2.5."""

ROLE_NAMES = (
    "none",
    "ultra-peripheral",
    "peripheral",
    "non-hub connector",
    "non-hub kinless",
    "provincial hub",
    "connector hub",
    "kinless hub",
)
"""Role code -> name: 0 = none (left out or P undefined), 1..7 = Guimera & Amaral's R1..R7."""

# Upper bounds of P of the roles (each range is (previous bound, bound]):
# non-hubs R1 <= 0.05 < R2 <= 0.62 < R3 <= 0.80 < R4; hubs R5 <= 0.30 < R6 <= 0.75 < R7.
_NON_HUB_BOUNDS = np.array([0.05, 0.62, 0.80])
_HUB_BOUNDS = np.array([0.30, 0.75])

FLAT_RTOL = 1e-12
"""A module whose within-module strengths span at most this fraction of the largest is flat (z = 0)."""

# Dense layer blocks are summed this many entries at a time, bounding the temporary memory.
_CHUNK = 1 << 22
# Up to this many modules per block side, sums are a matrix product with the membership matrix.
_MATMUL_GROUPS = 64


@dataclass(frozen=True)
class NodeRoles:
    """Guimera-Amaral roles of every node of a partitioned graph.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_nodes,)
        The partition: clusters 0..n_clusters-1, -1 for left-out nodes.
    participation : ndarray of float64, shape (n_nodes,)
        P_i = 1 - sum_s (k_is / k_i)^2, in [0, 1 - 1/n_clusters]; NaN for
        left-out and zero-degree nodes.
    zscore : ndarray of float64, shape (n_nodes,)
        z_i = (k_i,s_i - mean_s) / std_s over the members of the node's
        cluster s (population std); 0 in flat clusters, NaN for left-out nodes.
    strength : ndarray of float64, shape (n_nodes,)
        k_i, the sum of the node's edge weights (NaN for left-out nodes; inf
        where it exceeds the float64 range, P and z being exact all the same).
    within_strength : ndarray of float64, shape (n_nodes,)
        k_i,s_i, the part of k_i on edges inside the node's own cluster.
    roles : ndarray of int8, shape (n_nodes,)
        Role code: 1..7 = R1..R7 (names in ``ROLE_NAMES``), 0 = none.
    n_clusters : int
    hub_zscore : float
        Nodes with z >= hub_zscore are hubs (R5-R7).
    cluster_sizes : ndarray of int64, shape (n_clusters,)
    cluster_mean_participation : ndarray of float64, shape (n_clusters,)
        Mean P over the cluster's nodes with P defined (NaN if none).
    cluster_max_zscore : ndarray of float64, shape (n_clusters,)
    cluster_within_mean, cluster_within_std : ndarray of float64, shape (n_clusters,)
        Mean and population std of k_i,s_i over the cluster (the z-score's
        centre and scale; std 0 marks a flat cluster).
    cluster_internal_fraction : ndarray of float64, shape (n_clusters,)
        sum k_i,s_i / sum k_i over the cluster: its weight that stays inside
        (1 - cut / volume; NaN for a cluster of zero volume).
    cluster_role_counts : ndarray of int64, shape (n_clusters, 7)
        Nodes of each role R1..R7 per cluster.
    info : dict
        ``n_left_out`` (label -1), ``n_isolated`` (zero degree, label >= 0),
        ``flat_clusters`` (ids), ``operator`` (the graph form read:
        "csr", "layered" or "blocks").
    versions : dict
    """

    labels: np.ndarray
    participation: np.ndarray
    zscore: np.ndarray
    strength: np.ndarray
    within_strength: np.ndarray
    roles: np.ndarray
    n_clusters: int
    hub_zscore: float
    cluster_sizes: np.ndarray
    cluster_mean_participation: np.ndarray
    cluster_max_zscore: np.ndarray
    cluster_within_mean: np.ndarray
    cluster_within_std: np.ndarray
    cluster_internal_fraction: np.ndarray
    cluster_role_counts: np.ndarray
    info: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                object.__setattr__(self, f.name, frozen_array(value))

    @property
    def role_names(self) -> np.ndarray:
        """The role name of every node (``ROLE_NAMES[roles]``)."""
        return np.asarray(ROLE_NAMES, dtype=object)[self.roles]

    @property
    def hubs(self) -> np.ndarray:
        """Indices of the hubs (z >= hub_zscore, P defined), ascending."""
        return np.flatnonzero(self.roles >= 5)

    def summary(self) -> dict:
        """Whole-graph figures: mean P over the nodes where it is defined, hubs,
        connector hubs (R6), connectors (R3 + R6, GA's two connector roles),
        kinless nodes (R4 + R7), and the count of each role by name."""
        counts = np.bincount(self.roles, minlength=len(ROLE_NAMES))
        defined = ~np.isnan(self.participation)
        return {
            "n_nodes": int(self.labels.size),
            "n_clusters": int(self.n_clusters),
            "mean_participation": float(self.participation[defined].mean()) if defined.any() else float("nan"),
            "n_hubs": int(counts[5:].sum()),
            "n_connector_hubs": int(counts[6]),
            "n_connectors": int(counts[3] + counts[6]),
            "n_kinless": int(counts[4] + counts[7]),
            "role_counts": {name: int(c) for name, c in zip(ROLE_NAMES[1:], counts[1:])},
        }

    def clusters(self) -> list:
        """One dict per cluster: ``cluster``, ``size``, ``mean_participation``,
        ``max_zscore``, ``within_mean``, ``within_std``, ``internal_fraction``,
        ``n_hubs``, ``n_connectors`` (R3 + R6) and ``role_counts`` (by name)."""
        out = []
        for c in range(self.n_clusters):
            counts = self.cluster_role_counts[c]
            out.append({
                "cluster": c,
                "size": int(self.cluster_sizes[c]),
                "mean_participation": float(self.cluster_mean_participation[c]),
                "max_zscore": float(self.cluster_max_zscore[c]),
                "within_mean": float(self.cluster_within_mean[c]),
                "within_std": float(self.cluster_within_std[c]),
                "internal_fraction": float(self.cluster_internal_fraction[c]),
                "n_hubs": int(counts[4:].sum()),
                "n_connectors": int(counts[2] + counts[5]),
                "role_counts": {name: int(n) for name, n in zip(ROLE_NAMES[1:], counts)},
            })
        return out

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version: every field, NaN as None, plus the summaries."""
        out = {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["summary"] = to_plain(self.summary())
        out["clusters"] = to_plain(self.clusters())
        return out

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"NodeRoles(n_nodes={s['n_nodes']}, n_clusters={self.n_clusters}, "
            f"mean_participation={s['mean_participation']:.4f}, n_hubs={s['n_hubs']}, "
            f"n_connector_hubs={s['n_connector_hubs']})"
        )


def _labels_of(labels: Any, n: int) -> tuple:
    """(int64 labels, n_clusters): a Partition keeps its numbering (and empty clusters), an array is compacted."""
    if isinstance(labels, Partition):
        lab = np.array(labels.labels, dtype=np.int64)
        if lab.shape != (n,):
            raise ValueError(f"labels must have one entry per node ({n}), got a Partition of {lab.size} nodes")
        check_labels(lab, n)
        return lab, max(int(labels.n_clusters), int(lab.max(initial=-1)) + 1)
    lab = check_labels(labels, n)
    return lab, int(lab.max(initial=-1)) + 1


class _Groups:
    """The columns of a block grouped by the module of their unit: ``columns`` are the
    groups' positions in the layer's list of modules met."""

    def __init__(self, values: np.ndarray, uniq: np.ndarray) -> None:
        present, self.inverse = np.unique(values, return_inverse=True)
        self.columns = np.searchsorted(uniq, present)
        self.order = np.argsort(self.inverse, kind="stable")
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.inverse[self.order]) != 0])

    def sums(self, x: np.ndarray) -> np.ndarray:
        """Per row of ``x``, the sum of each group's columns (rows x groups)."""
        if self.columns.size <= _MATMUL_GROUPS:
            # Few modules: a product with the 0/1 membership matrix (BLAS) beats gathering the columns.
            onehot = np.zeros((x.shape[1], self.columns.size))
            onehot[np.arange(x.shape[1]), self.inverse] = 1.0
            return x @ onehot
        return np.add.reduceat(x[:, self.order], self.starts, axis=1)


def _stats(acc: np.ndarray, member: np.ndarray, uniq: np.ndarray) -> tuple:
    """(k_i, k_i,member_i, sum_s (k_is / k_i)^2) of the nodes whose row of k_is is ``acc``
    (one column per module in ``uniq``)."""
    k = acc.sum(axis=1)
    if uniq.size == 0:
        return k, np.zeros(member.size), np.zeros(member.size)
    pos = np.minimum(np.searchsorted(uniq, member), uniq.size - 1)
    within = np.where(uniq[pos] == member, acc[np.arange(member.size), pos], 0.0)
    # Shares before squaring: no overflow for any finite weights.
    share = acc / np.where(k > 0, k, 1.0)[:, None]
    return k, within, np.einsum("ij,ij->i", share, share)


def _strengths(native: Any, member: np.ndarray) -> tuple:
    """Per node: strength k_i, within-module strength k_i,member_i, and sum_s (k_is / k_i)^2,
    where k_is is the weight between node i and the nodes of module s (``member``: a module
    id >= 0 per node). Sparse sums for CSR graphs; layer blocks summed a chunk of rows at a
    time into one (units x modules met) array per layer, so the memory stays within the
    blocks' own size."""
    n = member.size
    if isinstance(native, CsrInput):
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(native.indptr))
        m = sp.csr_matrix((native.data, (rows, member[native.indices])), shape=(n, int(member.max(initial=0)) + 1))
        m.sum_duplicates()
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(m.indptr))
        k = np.bincount(rows, weights=m.data, minlength=n)
        own = m.indices == member[rows]
        within = np.bincount(rows[own], weights=m.data[own], minlength=n)
        share = m.data / np.where(k > 0, k, 1.0)[rows]
        return k, within, np.bincount(rows, weights=share * share, minlength=n)
    if isinstance(native, LayeredInput):
        sizes, pairs, blocks = native.sizes, [(l, l + 1) for l in range(len(native.weights))], native.weights
    else:
        sizes, pairs, blocks = native.sizes, native.pairs, native.blocks
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    layer_member = [member[offsets[l]:offsets[l + 1]] for l in range(len(sizes))]
    met = [[] for _ in sizes]  # the modules each layer's units can reach
    for (s, d), b in zip(pairs, blocks):
        if b.size:
            met[s].append(layer_member[d])
            met[d].append(layer_member[s])
    uniq = [np.unique(np.concatenate(m)) if m else np.zeros(0, np.int64) for m in met]
    acc = [np.zeros((size, u.size)) for size, u in zip(sizes, uniq)]
    for (s, d), b in zip(pairs, blocks):
        if b.size == 0:
            continue
        by_d = _Groups(layer_member[d], uniq[s])
        step = max(1, _CHUNK // b.shape[1])
        for r0 in range(0, b.shape[0], step):
            a = np.abs(b[r0:r0 + step])
            acc[s][r0:r0 + a.shape[0], by_d.columns] += by_d.sums(a)
            by_s = _Groups(layer_member[s][r0:r0 + a.shape[0]], uniq[d])
            acc[d][:, by_s.columns] += by_s.sums(a.T)
    parts = [_stats(a, m, u) for a, m, u in zip(acc, layer_member, uniq)]
    return tuple(np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(3))


def _arrays(native: Any) -> tuple:
    if isinstance(native, CsrInput):
        return (native.data,)
    return native.weights if isinstance(native, LayeredInput) else native.blocks


def _shift(native: Any, scaled: Any) -> int:
    """The power of two by which ``for_kernel`` scaled the weights (0 when it left them)."""
    if scaled is native:
        return 0
    for a, b in zip(_arrays(native), _arrays(scaled)):
        if a.size:
            i = int(np.argmax(np.abs(a)))
            if a.flat[i] != 0:
                return int(np.frexp(b.flat[i])[1] - np.frexp(a.flat[i])[1])
    return 0


def node_roles(graph: Any, labels: Any, *, hub_zscore: float = HUB_ZSCORE) -> NodeRoles:
    """Participation coefficient, within-module degree z-score and role of every node.

    With k_i the strength of node i (the sum of its edge weights |w|), k_is
    the part of it on edges to the nodes of module s, and s_i the module of
    node i (Guimera & Amaral 2005, weighted):

    * participation ``P_i = 1 - sum_s (k_is / k_i)^2``: 0 when all of a
      node's weight stays in one module, towards 1 when it spreads evenly;
    * within-module degree z-score ``z_i = (k_i,s_i - mean_s) / std_s``, the
      mean and the population std taken over the members j of s_i of
      k_j,s_i: how strongly a node is tied into its own module, relative to
      the other members;
    * role: hubs have z >= ``hub_zscore``; non-hubs are R1 ultra-peripheral
      (P <= 0.05), R2 peripheral (0.05 < P <= 0.62), R3 non-hub connectors
      (0.62 < P <= 0.80), R4 non-hub kinless (P > 0.80); hubs are R5
      provincial (P <= 0.30), R6 connector (0.30 < P <= 0.75), R7 kinless
      hubs (P > 0.75).

    Undefined cases (left-out and zero-degree nodes, flat modules) follow the
    conventions in the module notes of :mod:`netmod.roles`.

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray, torch.nn.Module or list of weight matrices
        Any graph netmod takes (see :func:`netmod.spectral_clustering`);
        weights |w|. Layered and block graphs (:func:`netmod.from_torch`,
        :func:`netmod.from_layers`, :func:`netmod.from_blocks`) are read block
        by block.
    labels : array_like of int, shape (n_nodes,), or Partition
        Module of each node; -1 only on zero-degree nodes. An array's ids are
        renumbered 0..k-1 in increasing order; a Partition keeps its
        numbering.
    hub_zscore : float, default 2.5
        The z from which a node is a hub.

    Returns
    -------
    NodeRoles
        Per-node P, z, strengths and roles; per-cluster summaries
        (``clusters()``) and whole-graph ones (``summary()``).

    Raises
    ------
    TypeError
        For graphs or labels of the wrong kind.
    ValueError
        For invalid graphs, labels that do not fit the graph, a node with
        edges labelled -1, or a non-finite ``hub_zscore``.

    References
    ----------
    R. Guimera and L. A. N. Amaral, "Functional cartography of complex
    metabolic networks", Nature 433, 895-900 (2005).

    Examples
    --------
    A star-like module {0, 1, 2, 3} centred on node 0 and a triangle {4, 5, 6}, joined
    by the edge 0-4: node 0 is its module's most connected node and, with node 4, the
    only one with weight outside; the triangle is flat (every member at the mean).

    >>> import numpy as np, netmod
    >>> a = np.zeros((7, 7))
    >>> for i, j in [(0, 1), (0, 2), (0, 3), (1, 2), (4, 5), (4, 6), (5, 6), (0, 4)]:
    ...     a[i, j] = a[j, i] = 1.0
    >>> r = netmod.node_roles(a, [0, 0, 0, 0, 1, 1, 1])
    >>> np.round(r.participation, 4).tolist()
    [0.375, 0.0, 0.0, 0.0, 0.4444, 0.0, 0.0]
    >>> np.round(r.zscore, 4).tolist()
    [1.4142, 0.0, 0.0, -1.4142, 0.0, 0.0, 0.0]
    >>> r.role_names.tolist()[:2], r.info["flat_clusters"]
    (['peripheral', 'ultra-peripheral'], [1])
    """
    hub_zscore = check_real(hub_zscore, "hub_zscore")
    native = as_native(graph)
    n = native.n_nodes
    lab, k_clusters = _labels_of(labels, n)
    operator = {CsrInput: "csr", LayeredInput: "layered", BlockInput: "blocks"}[type(native)]
    # Weights scaled by a power of two as for the kernel (exact; P and z do not change) so that
    # no strength overflows or loses bits to subnormals; strengths are reported unscaled.
    scaled = for_kernel(native)
    shift = _shift(native, scaled)
    left_out = lab < 0
    # Left-out nodes form one more module, k_clusters, so one pass gives every k_i.
    k, within, concentration = _strengths(scaled, np.where(left_out, k_clusters, lab))
    bad = np.flatnonzero(left_out & (k > 0))
    if bad.size:
        raise ValueError(
            f"labels: -1 is allowed only on zero-degree nodes, got -1 on node {int(bad[0])} "
            f"(strength {np.ldexp(k[bad[0]], -shift):g}; {bad.size} such nodes)"
        )
    kept = ~left_out
    isolated = kept & (k == 0)
    live = kept & (k > 0)
    participation = np.full(n, np.nan)
    # P >= 0 in exact arithmetic (the shares sum to 1); round-off can cross it by an ulp.
    participation[live] = np.maximum(1.0 - concentration[live], 0.0)

    lk = lab[kept]
    sizes = np.bincount(lk, minlength=k_clusters)
    x = within[kept]
    # Each module scaled by a power of two of its largest value: exact, and (x - mean)^2 cannot overflow.
    top = np.zeros(k_clusters)
    np.maximum.at(top, lk, x)
    exponent = np.frexp(top)[1]
    y = np.ldexp(x, -exponent[lk])
    count = np.maximum(sizes, 1)
    mean = np.bincount(lk, weights=y, minlength=k_clusters) / count
    dev = y - mean[lk]
    std = np.sqrt(np.bincount(lk, weights=dev * dev, minlength=k_clusters) / count)
    low = np.full(k_clusters, np.inf)
    np.minimum.at(low, lk, y)
    top_scaled = np.ldexp(top, -exponent)
    flat = (sizes > 0) & (top_scaled - low <= FLAT_RTOL * top_scaled)
    zscore = np.full(n, np.nan)
    zscore[kept] = np.where(flat[lk], 0.0, dev / np.where(flat, 1.0, std)[lk])
    std_out = np.where(flat, 0.0, np.ldexp(std, exponent))
    std_out[sizes == 0] = np.nan

    roles = np.zeros(n, dtype=np.int8)
    p_live, z_live = participation[live], zscore[live]
    hub = z_live >= hub_zscore
    roles[live] = np.where(hub, 5 + np.searchsorted(_HUB_BOUNDS, p_live, side="left"),
                           1 + np.searchsorted(_NON_HUB_BOUNDS, p_live, side="left"))

    lives = lab[live]
    n_live = np.bincount(lives, minlength=k_clusters)
    p_sum = np.bincount(lives, weights=participation[live], minlength=k_clusters)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(n_live > 0, p_sum / np.maximum(n_live, 1), np.nan)
        volume = np.bincount(lk, weights=k[kept], minlength=k_clusters)
        inside = np.bincount(lk, weights=x, minlength=k_clusters)
        internal = np.where(volume > 0, inside / np.where(volume > 0, volume, 1.0), np.nan)
    max_z = np.full(k_clusters, -np.inf)
    np.maximum.at(max_z, lk, zscore[kept])
    max_z[sizes == 0] = np.nan
    role_counts = np.zeros((k_clusters, 7), dtype=np.int64)
    np.add.at(role_counts, (lives, roles[live].astype(np.int64) - 1), 1)
    with np.errstate(over="ignore"):  # a strength beyond the float64 range is inf; P and z are not affected
        k_out = np.where(kept, np.ldexp(k, -shift), np.nan)
        within_out = np.where(kept, np.ldexp(within, -shift), np.nan)
        std_out = np.ldexp(std_out, -shift)
        mean_out = np.where(sizes > 0, np.ldexp(mean, exponent - shift), np.nan)
    return NodeRoles(
        labels=lab,
        participation=participation,
        zscore=zscore,
        strength=k_out,
        within_strength=within_out,
        roles=roles,
        n_clusters=k_clusters,
        hub_zscore=hub_zscore,
        cluster_sizes=sizes.astype(np.int64),
        cluster_mean_participation=mean_p,
        cluster_max_zscore=max_z,
        cluster_within_mean=mean_out,
        cluster_within_std=std_out,
        cluster_internal_fraction=internal,
        cluster_role_counts=role_counts,
        info={
            "n_left_out": int(left_out.sum()),
            "n_isolated": int(isolated.sum()),
            "flat_clusters": np.flatnonzero(flat).tolist(),
            "operator": operator,
        },
    )
