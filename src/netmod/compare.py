"""Compare how clustering algorithms partition the same network."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import igraph as ig
import numpy as np

from ._validate import check_int, check_seed
from .communities import leiden, louvain, modularity
from .graphs import graph_info, to_igraph
from .results import Partition, to_plain, versions
from .roles import NodeRoles, node_roles
from .spectral import spectral_clustering

__all__ = ["Comparison", "compare"]

METHODS = ("spectral", "leiden", "leiden-leidenalg", "louvain")


@dataclass(frozen=True)
class Comparison:
    """Partitions of one graph by several methods, scored the same way.

    Attributes
    ----------
    rows : list of dict
        Per method: ``method``, ``n_clusters``, ``ncut``, ``modularity``
        (weighted Q), ``sizes`` (largest first), ``seconds`` (wall time), and
        ``layer_composition`` (fraction of each cluster's units in each layer)
        when the graph has layers, and the node roles (Guimera-Amaral, see
        :func:`netmod.node_roles`): ``mean_participation`` (mean P over the
        nodes with edges), ``n_hubs`` (z >= 2.5), ``n_connector_hubs`` (R6),
        ``n_connectors`` (R3 + R6) and ``role_counts`` (nodes per role name).
    pairs : list of dict
        Per pair of methods: ``a``, ``b``, ``nmi``, ``ari``, ``vi``
        (igraph's compare_communities, on the non-isolated nodes).
    partitions : dict
        Method name -> Partition.
    seed, n_clusters : int
    graph_info : dict
        How the graph's edge weights were made (``kernel_norm`` and ``include``
        of a :func:`netmod.from_torch` graph; empty for other graphs).
    roles : dict
        Method name -> NodeRoles of its partition (per node P, z and role,
        per cluster summaries).
    versions : dict
    """

    rows: list
    pairs: list
    partitions: dict
    seed: int
    n_clusters: int
    graph_info: dict = field(default_factory=dict)
    roles: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version, labels included."""
        return {
            "rows": to_plain(self.rows),
            "pairs": to_plain(self.pairs),
            "partitions": {k: v.to_dict() for k, v in self.partitions.items()},
            "seed": self.seed,
            "n_clusters": self.n_clusters,
            "graph_info": to_plain(self.graph_info),
            "roles": {k: _roles_dict(v) for k, v in self.roles.items()},
            "versions": dict(self.versions),
        }

    def to_markdown(self) -> str:
        """The two tables (methods with their node-role summaries, pairs) as Markdown."""
        lines = ["| method | k | n-cut | Q | mean P | hubs | connector hubs | largest clusters | ms |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            sizes = ", ".join(map(str, r["sizes"][:6])) + (", ..." if len(r["sizes"]) > 6 else "")
            lines.append(
                f"| {r['method']} | {r['n_clusters']} | {r['ncut']:.4f} | {r['modularity']:.4f} | "
                f"{r['mean_participation']:.4f} | {r['n_hubs']} | {r['n_connector_hubs']} | "
                f"{sizes} | {1000 * r['seconds']:.0f} |"
            )
        if self.pairs:
            lines += ["", "| a | b | NMI | ARI | VI |", "|---|---|---|---|---|"]
            for p in self.pairs:
                lines.append(f"| {p['a']} | {p['b']} | {p['nmi']:.4f} | {p['ari']:.4f} | {p['vi']:.4f} |")
        return "\n".join(lines)

    def __str__(self) -> str:
        head = (f"{'method':<22} {'k':>4} {'n-cut':>9} {'Q':>8} {'mean P':>8} {'hubs':>5} {'c.hubs':>6} "
                f"{'ms':>8}  sizes")
        out = [head, "-" * len(head)]
        for r in self.rows:
            sizes = " ".join(map(str, r["sizes"][:8])) + (" ..." if len(r["sizes"]) > 8 else "")
            out.append(
                f"{r['method']:<22} {r['n_clusters']:>4} {r['ncut']:>9.4f} {r['modularity']:>8.4f} "
                f"{r['mean_participation']:>8.4f} {r['n_hubs']:>5} {r['n_connector_hubs']:>6} "
                f"{1000 * r['seconds']:>8.0f}  {sizes}"
            )
        out += ["", "mean P: mean participation coefficient; hubs: z >= 2.5; c.hubs: connector hubs (R6)"]
        if self.pairs:
            out += ["", f"{'a':<22} {'b':<22} {'NMI':>7} {'ARI':>7} {'VI':>7}"]
            for p in self.pairs:
                out.append(f"{p['a']:<22} {p['b']:<22} {p['nmi']:>7.4f} {p['ari']:>7.4f} {p['vi']:>7.4f}")
        return "\n".join(out)


def _roles_dict(roles: NodeRoles) -> dict:
    """A method's node roles for JSON: per node P, z and role code, and the per-cluster summaries."""
    return {
        "participation": to_plain(roles.participation),
        "zscore": to_plain(roles.zscore),
        "roles": roles.roles.tolist(),
        "clusters": to_plain(roles.clusters()),
    }


def _composition(g: ig.Graph, labels: np.ndarray, k: int) -> list | None:
    if "layer" not in g.vs.attributes():
        return None
    layer = np.asarray(g.vs["layer"], dtype=np.int64)
    n_layers = int(layer.max()) + 1
    kept = labels >= 0
    counts = np.zeros((k, n_layers))
    np.add.at(counts, (labels[kept], layer[kept]), 1)
    return (counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)).tolist()


def compare(
    graph: Any,
    *,
    methods: Sequence[str] = ("spectral", "leiden", "louvain"),
    n_clusters: int = 12,
    seed: int | None = 0,
) -> Comparison:
    """Partition a graph with several methods and compare the results.

    Spectral clustering runs at ``n_clusters``; Leiden (modularity, igraph or
    leidenalg backend) and Louvain choose their own number of clusters, so
    spectral clustering is also run at Leiden's k (row ``spectral@k=K``) to
    compare n-cuts at equal k.

    Parameters
    ----------
    graph : igraph.Graph, scipy sparse matrix, ndarray or torch.nn.Module
    methods : sequence of {"spectral", "leiden", "leiden-leidenalg", "louvain"}
    n_clusters : int, default 12
    seed : int or None, default 0
        Seed of every method (None draws one, recorded in the result).

    Returns
    -------
    Comparison
        ``print(cmp)`` shows the tables; ``to_dict()`` and ``to_markdown()``.

    Raises
    ------
    ValueError
        For unknown or repeated methods, and as the methods themselves raise.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.kron(np.eye(3), np.ones((5, 5))) - np.eye(15)
    >>> a[4, 5] = a[5, 4] = a[9, 10] = a[10, 9] = 0.2
    >>> cmp = compare(a, n_clusters=3)
    >>> [r["n_clusters"] for r in cmp.rows], [round(p["ari"], 6) for p in cmp.pairs]
    ([3, 3, 3], [1.0, 1.0, 1.0])
    """
    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {methods!r}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods must not repeat, got {methods!r}")
    k = check_int(n_clusters, "n_clusters", 2)
    seed = check_seed(seed)
    g = to_igraph(graph)

    runs = {
        "spectral": lambda: spectral_clustering(g, n_clusters=k, seed=seed),
        "leiden": lambda: leiden(g, objective="modularity", seed=seed, backend="igraph"),
        "leiden-leidenalg": lambda: leiden(g, objective="modularity", seed=seed, backend="leidenalg"),
        "louvain": lambda: louvain(g, seed=seed),
    }
    partitions: dict[str, Partition] = {}
    seconds: dict[str, float] = {}
    for m in methods:
        t0 = time.perf_counter()
        partitions[m] = runs[m]()
        seconds[m] = time.perf_counter() - t0
    for m in ("leiden", "leiden-leidenalg"):
        if m not in partitions:
            continue
        k_l = partitions[m].n_clusters
        name = f"spectral@k={k_l}"
        live = int((partitions[m].labels >= 0).sum())
        if name not in partitions and 2 <= k_l <= live and not ("spectral" in partitions and k_l == k):
            t0 = time.perf_counter()
            partitions[name] = spectral_clustering(g, n_clusters=k_l, seed=seed)
            seconds[name] = time.perf_counter() - t0

    rows = []
    roles = {}
    for name, p in partitions.items():
        roles[name] = node_roles(g, p)
        summary = roles[name].summary()
        rows.append(
            {
                "method": name,
                "n_clusters": int(p.n_clusters),
                "ncut": float(p.ncut),
                "modularity": modularity(g, p.labels),
                "sizes": p.sizes.tolist(),
                "seconds": seconds[name],
                "layer_composition": _composition(g, p.labels, p.n_clusters),
                **{key: summary[key] for key in ("mean_participation", "n_hubs", "n_connector_hubs",
                                                  "n_connectors", "role_counts")},
            }
        )
    pairs = []
    for a, b in itertools.combinations(partitions, 2):
        la, lb = partitions[a].labels, partitions[b].labels
        kept = (la >= 0) & (lb >= 0)
        ma, mb = la[kept].tolist(), lb[kept].tolist()
        pairs.append(
            {
                "a": a,
                "b": b,
                "nmi": float(ig.compare_communities(ma, mb, method="nmi")),
                "ari": float(ig.compare_communities(ma, mb, method="adjusted_rand")),
                "vi": float(ig.compare_communities(ma, mb, method="vi")),
            }
        )
    return Comparison(rows=rows, pairs=pairs, partitions=partitions, seed=seed, n_clusters=k,
                      graph_info=graph_info(graph), roles=roles)
