"""Reports: Markdown tables, CSV, JSON and PNG figures of reproductions, lesion analyses and nulls.

Figures are ``matplotlib.figure.Figure`` objects saved straight to PNG, so
writing a report never touches pyplot or the user's matplotlib backend.
Results are computed elsewhere (:mod:`netmod.reproduce`, :mod:`netmod.lesions`,
:mod:`netmod.nulls`); this module only formats them.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .graphs import layer_weights
from .lesions import CATEGORIES
from .results import to_plain

__all__ = [
    "null_histogram",
    "reproduction_figures",
    "reproduction_markdown",
    "sweep_figure",
    "write_csv",
    "write_lesion_report",
]


def _figure(**kw: Any):
    from matplotlib.figure import Figure

    return Figure(**kw)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def write_csv(path: str | Path, rows: list) -> None:
    """Rows (dicts with the same keys) as a CSV file; list-valued columns are left out.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.csv")
    >>> write_csv(path, [{"seed": 0, "ncut": 9.5, "sizes": [3, 2]}, {"seed": 1, "ncut": 9.25, "sizes": [4, 1]}])
    >>> print(open(path).read().strip())
    seed,ncut
    0,9.5
    1,9.25
    """
    fields = [k for k, v in rows[0].items() if not isinstance(v, (list, tuple))]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# --- reproductions ---------------------------------------------------------------------


def reproduction_markdown(result: Any) -> str:
    """``report.md`` of a :class:`netmod.reproduce.Reproduction`: our table beside the paper's,
    the claims with their evidence, every network's row, timings and versions."""
    from .paper import VARIANTS

    cfg = result.config
    seeds = f"seeds {cfg.seed}..{cfg.seed + cfg.networks - 1}"
    variant = "" if cfg.variant == "standard" else f", {cfg.variant}"
    n_init = (f"n_init {cfg.n_init}" if cfg.n_init is not None else
              "n_init 10" if cfg.protocol == "2020" else "n_init 25 (100 above 2000 nodes)")
    training = "" if cfg.variant == "standard" else f" Condition: {VARIANTS[cfg.variant]}."
    stacked = (" The networks of each condition were trained at once, stacked as one batched network "
               "(`netmod.training.train_mlps`)." if cfg.stack else "")
    lines = [
        f"# netmod reproduction: {cfg.dataset}{variant}, {cfg.protocol} protocol{' (quick run)' if cfg.quick else ''}",
        "",
        (f"Data: {result.data_source}. MLP {'-'.join(map(str, cfg.sizes))}, {cfg.epochs} training epochs, "
         f"{cfg.prune_epochs} pruning epochs (50% -> 90% sparsity, cubic schedule); {cfg.networks} network(s) per "
         f"condition, {seeds}.{training}{stacked} Spectral clustering k={cfg.n_clusters}, {n_init}; "
         f"nulls: {', '.join(cfg.nulls)}, {cfg.n_shuffles} shuffles each; clustering noise: the n-cut's sd over "
         f"{cfg.clustering_seeds} more k-means seeds of each network."),
        "",
        f"Published numbers: {cfg.protocol} protocol of REFERENCE.md {'6' if cfg.variant == 'standard' else '6b'}"
        + (" (full MNIST; this run used a smaller training set, so only the direction of the claims "
           "is comparable)." if cfg.dataset == "embedded" else "."),
        "",
        ("| condition | null | nets | n-cut mean +- sd | clustering sd | paper | null mean | null sd | paper "
         "| mean z | paper | significant | paper | combined p | test acc | paper |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.summary:
        paper_ncut = "-" if s["paper_ncut"] is None else (
            f"{s['paper_ncut']:.3f}" + ("" if s["paper_sd"] is None else f" +- {s['paper_sd']:.3f}"))
        lines.append(
            f"| {s['condition']} | {s['null']} | {s['networks']} | {s['ncut_mean']:.3f} +- {s['ncut_sd']:.3f} "
            f"| {_fmt(s.get('clustering_sd'), '.4f')} | {paper_ncut} | {s['null_mean']:.3f} "
            f"| {_fmt(s.get('null_sd'), '.3f')} | {_fmt(s['paper_null_mean'], '.3f')} | {s['mean_z']:.1f} "
            f"| {_fmt(s['paper_mean_z'], '.1f')} | {s['significant']}/{s['networks']} "
            f"| {s['paper_significant'] or '-'} | {s['combined_p']:.2g} | {s['test_accuracy']:.3f} "
            f"| {_fmt(s['paper_acc'], '.3f')} |")
    lines += ["", ("Significant = observed n-cut below every shuffle; z uses the population sd of the null; "
                   "percentiles count ties against the network; combined p = Fisher's combination of the "
                   "networks' percentiles (as the 2021 code). n-cut sd: across networks (training noise and "
                   "clustering noise); clustering sd: the root-mean-square over networks of each network's sd "
                   "over k-means seeds; null sd: the same of each network's null sd."),
              "", "## Claims", ""]
    for name, c in result.claims.items():
        lines.append(f"- **{'holds' if c['holds'] else 'does not hold'}**: {name} ({c['evidence']})")
        if c.get("reason"):
            lines.append(f"  - why: {c['reason']}")
    t = result.timings
    lines += ["", "## Per network", "",
              ("| condition | seed | null | n-cut | clustering mean +- sd | null mean +- sd | z | percentile "
               "| test acc | sparsity | torch threads |"),
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        noise = ("-" if r.get("clustering_sd") is None
                 else f"{r['clustering_mean']:.4f} +- {r['clustering_sd']:.4f}")
        lines.append(f"| {r['condition']} | {r['seed']} | {r['null']} | {r['ncut']:.4f} | {noise} "
                     f"| {r['null_mean']:.4f} +- {r['null_std']:.4f} | {r['zscore']:.2f} | {r['percentile']:.4f} "
                     f"| {r['test_accuracy']:.4f} "
                     f"| {_fmt(r['sparsity'], '.3f')} | {_fmt(r.get('torch_threads'), 'd')} |")
    lines += ["", "## Timing", "",
              (f"Training {t['training_seconds']:.0f} s (this run; reused networks count their recorded time "
               f"{t['recorded_training_seconds']:.0f} s), analysis {t['analysis_seconds']:.0f} s, "
               f"total {t['total_seconds']:.0f} s"
               + (f"; one task per seed on {t['executor']}, {t['wall_seconds']:.0f} s wall for the tasks "
                  "(training and analysis add up task by task)." if "executor" in t else ".")), "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(result.versions.items())), ""]
    if result.files:
        lines += ["Figures: " + ", ".join(f"[{f}]({f})" for f in result.files if f.endswith(".png")), ""]
    return "\n".join(lines)


def _variant_of(cfg: Any) -> str:
    """", <variant>" of a reproduction's config, or "" for the standard conditions."""
    return "" if getattr(cfg, "variant", "standard") == "standard" else f", {cfg.variant}"


def _null_panel(ax: Any, null: Any, title: str, legend: bool) -> None:
    ax.hist(null.samples, bins=20, color="0.6", label=f"{null.shuffle} shuffles (n={null.n_shuffles})")
    ax.axvline(null.observed, color="C3", lw=2, label="observed")
    ax.set_title(f"{title}\nz = {null.zscore:.1f}, percentile {null.percentile:.3f}", fontsize=9)
    ax.set_xlabel("n-cut" if null.statistic == "ncut" else "modularity Q")
    if legend:
        ax.legend(fontsize=7)


def reproduction_figures(out: str | Path, result: Any, examples: dict) -> list:
    """The PNG figures of a reproduction; returns their file names.

    ``examples`` maps each condition to (graph, partition, nulls) of its first network.
    """
    out = Path(out)
    cfg = result.config
    files = []
    nulls = cfg.nulls
    conditions = cfg.conditions
    fig = _figure(figsize=(4 * len(conditions), 3 * len(nulls)))
    axes = fig.subplots(len(nulls), len(conditions), squeeze=False)
    for j, cond in enumerate(conditions):
        _, _, null_dists = examples[cond.name]
        for i, m in enumerate(nulls):
            _null_panel(axes[i][j], null_dists[m], cond.name, legend=j == 0)
    fig.suptitle(f"{cfg.dataset}{_variant_of(cfg)}: observed n-cut vs weight-shuffled nulls "
                 f"(seed {cfg.seed}, k={cfg.n_clusters})")
    fig.tight_layout()
    fig.savefig(out / "null_histograms.png", dpi=90)
    files.append("null_histograms.png")

    fig = _figure(figsize=(7, 4))
    ax = fig.subplots()
    m = nulls[0]
    for j, cond in enumerate(conditions):
        sel = [r for r in result.rows if r["condition"] == cond.name and r["null"] == m]
        xs = j + np.linspace(-0.1, 0.1, len(sel)) if len(sel) > 1 else [j]
        ax.scatter(xs, [r["ncut"] for r in sel], color="C0", zorder=3, label="observed" if j == 0 else None)
        ax.scatter(xs, [r["null_mean"] for r in sel], color="0.5", marker="x",
                   label=f"{m}-null mean" if j == 0 else None)
        s = next(s for s in result.summary if s["condition"] == cond.name and s["null"] == m)
        if s["paper_ncut"] is not None:
            ax.plot([j - 0.25, j + 0.25], [s["paper_ncut"]] * 2, color="C1", lw=2,
                    label="paper mean" if j == 0 else None)
    ax.set_xticks(range(len(conditions)), [c.name for c in conditions])
    ax.set_ylabel(f"n-cut (k={cfg.n_clusters})")
    ax.set_title(f"{cfg.dataset}{_variant_of(cfg)}, {cfg.protocol} protocol")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ncut_by_condition.png", dpi=90)
    files.append("ncut_by_condition.png")

    fig = _figure(figsize=(4 * len(conditions), 4.2))
    axes = fig.subplots(1, len(conditions))
    for ax, cond in zip(axes, conditions):
        graph, partition, _ = examples[cond.name]
        _cluster_sorted_weights(ax, layer_weights(graph), np.asarray(partition.labels))
        ax.set_title(f"{cond.name}: n-cut {partition.ncut:.2f}", fontsize=9)
    fig.suptitle(f"|W| of the seed-{cfg.seed} networks, units sorted by cluster (then layer)")
    fig.tight_layout()
    fig.savefig(out / "clusters.png", dpi=90)
    files.append("clusters.png")
    return files


def _cluster_sorted_weights(ax: Any, ws: list, labels: np.ndarray) -> None:
    sizes = [ws[0].shape[0]] + [w.shape[1] for w in ws]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = offsets[-1]
    adj = np.zeros((n, n), dtype=np.float32)
    for i, w in enumerate(ws):
        block = np.abs(w).astype(np.float32)
        adj[offsets[i]:offsets[i + 1], offsets[i + 1]:offsets[i + 2]] = block
        adj[offsets[i + 1]:offsets[i + 2], offsets[i]:offsets[i + 1]] = block.T
    live = labels >= 0
    layer = np.repeat(np.arange(len(sizes)), sizes)
    order = np.lexsort((layer[live], labels[live]))
    idx = np.flatnonzero(live)[order]
    a = adj[np.ix_(idx, idx)]
    ax.imshow(np.log1p(a / (a[a > 0].mean() if (a > 0).any() else 1.0)), cmap="Greys", interpolation="nearest")
    for b in np.cumsum(np.bincount(labels[live]))[:-1]:
        ax.axhline(b - 0.5, color="C3", lw=0.4)
        ax.axvline(b - 0.5, color="C3", lw=0.4)
    ax.set_xticks([])
    ax.set_yticks([])


# --- nulls ------------------------------------------------------------------------------------


def null_histogram(path: str | Path, nulls: dict, *, title: str) -> None:
    """One histogram panel per null (a dict name -> NullDistribution), saved as a PNG."""
    fig = _figure(figsize=(4.5 * len(nulls), 3.4))
    axes = fig.subplots(1, len(nulls), squeeze=False)[0]
    for ax, (name, null) in zip(axes, nulls.items()):
        _null_panel(ax, null, name, legend=True)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def sweep_figure(path: str | Path, sweep: Any, *, title: str = "") -> None:
    """A :class:`netmod.Sweep` as a PNG: n-cut per k (beside its null's mean +- 2 sd when it has one),
    z per k against the null, and the eigenvalues with the eigengap heuristic's k marked."""
    null = sweep.n_shuffles > 0
    fig = _figure(figsize=(13 if null else 9, 3.6))
    axes = fig.subplots(1, 3 if null else 2)
    ks = np.asarray(sweep.ks)
    order = np.argsort(ks)
    ax = axes[0]
    ax.plot(ks[order], np.asarray(sweep.ncut)[order], "o-", color="tab:blue", ms=4, label="network")
    if null:
        mean, sd = np.asarray(sweep.null_mean)[order], np.asarray(sweep.null_std)[order]
        ax.plot(ks[order], mean, "s--", color="tab:gray", ms=3, label=f"{sweep.shuffle} null, mean +- 2 sd "
                                                                       f"({sweep.n_shuffles} shuffles)")
        ax.fill_between(ks[order], mean - 2 * sd, mean + 2 * sd, color="tab:gray", alpha=0.3, lw=0)
        zx = axes[1]
        zx.bar(ks[order], np.asarray(sweep.z)[order], color="tab:blue")
        zx.axhline(0, color="black", lw=0.8)
        zx.set_xlabel("k (clusters)")
        zx.set_ylabel("z = (n-cut - null mean) / null sd")
        zx.set_title("below 0: more modular than the shuffles", fontsize=9)
    ax.set_xlabel("k (clusters)")
    ax.set_ylabel("n-cut (lower = more modular)")
    ax.legend(fontsize=8)
    bx = axes[-1]
    lam = np.asarray(sweep.eigenvalues)
    bx.plot(np.arange(1, lam.size + 1), lam, "o-", color="tab:purple", ms=3)
    bx.axvline(sweep.best_k_eigengap + 0.5, color="tab:red", ls=":",
               label=f"largest eigengap: after k = {sweep.best_k_eigengap}")
    bx.set_xlabel("i")
    bx.set_ylabel("eigenvalue i, normalised Laplacian")
    bx.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# --- lesion analyses ------------------------------------------------------------------------

_COLOURS = {"important": "tab:red", "prunable": "tab:green", "small": "tab:gray", "complete": "black",
            "other": "tab:blue"}
_CSV_COLUMNS = ("layer", "cluster", "size", "accuracy", "drop", "null_mean", "null_std", "z", "p",
                "mean_class_drop", "range", "range_p", "category")


def write_lesion_report(out: str | Path, importance: Any, dependencies: Any = None, *,
                        partition: Any = None, **info: Any) -> list:
    """Write the tables (CSV, Markdown), JSON and PNG figures of a lesion analysis into folder ``out``.

    Files: ``importance.csv``, ``importance.md``, ``importance.png`` (drop vs
    size, coloured by category, with the random lesions' mean and spread),
    ``lesions.json`` (the results' ``to_dict()``, the partition's if given,
    and ``info``), and with ``dependencies``: ``dependencies.csv`` and
    ``dependencies.png`` (the dependency graph, sub-modules placed by layer).
    Returns the names written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    with open(out / "importance.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_CSV_COLUMNS)
        for r in importance.table:
            writer.writerow([r[c] for c in _CSV_COLUMNS])
    files.append("importance.csv")
    (out / "importance.md").write_text(importance.to_markdown() + "\n")
    files.append("importance.md")
    payload = {"info": info, "importance": importance.to_dict()}
    if partition is not None and hasattr(partition, "to_dict"):
        payload["partition"] = to_plain(partition.to_dict())
    if dependencies is not None:
        payload["dependencies"] = dependencies.to_dict()
        with open(out / "dependencies.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["x", "y", "drop_x", "drop_y", "drop_xy", "interaction", "p_x_given_y",
                             "p_y_given_x", "edge"])
            for r in dependencies.pairs:
                x, y = (dependencies.nodes[r[k]] for k in ("i", "j"))
                edge = {"i->j": "x->y", "j->i": "y->x", None: ""}[r["edge"]]
                writer.writerow([f"{x['layer']}:{x['cluster']}", f"{y['layer']}:{y['cluster']}", r["drop_i"],
                                 r["drop_j"], r["drop_ij"], r["interaction"], r["p_i_given_j"],
                                 r["p_j_given_i"], edge])
        files.append("dependencies.csv")
    (out / "lesions.json").write_text(json.dumps(payload, indent=1))
    files.append("lesions.json")
    files += _lesion_figures(out, importance, dependencies)
    return files


def _lesion_figures(out: Path, importance: Any, dependencies: Any) -> list:
    files = []
    fig = _figure(figsize=(7, 4.5))
    ax = fig.subplots()
    rows = importance.table
    sizes = np.array([r["size"] for r in rows], dtype=float)
    ax.errorbar(sizes, [100 * r["null_mean"] for r in rows], yerr=[100 * r["null_std"] for r in rows],
                fmt="none", ecolor="0.75", elinewidth=3, label="random sets: mean +- sd", zorder=1)
    for category in CATEGORIES:
        sel = [r for r in rows if r["category"] == category]
        if sel:
            ax.scatter([r["size"] for r in sel], [100 * r["drop"] for r in sel], color=_COLOURS[category],
                       label=category, zorder=2, edgecolor="white")
    for r in rows:
        ax.annotate(f"{r['layer']}:{r['cluster']}", (r["size"], 100 * r["drop"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("sub-module size (units)")
    ax.set_ylabel("accuracy drop (points)")
    ax.set_title(f"Lesions: {importance.n_draws} random sets per sub-module; base accuracy "
                 f"{100 * importance.base_accuracy:.2f}%", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "importance.png", dpi=90)
    files.append("importance.png")
    if dependencies is None:
        return files
    fig = _figure(figsize=(7, 4.5))
    ax = fig.subplots()
    nodes = dependencies.nodes
    pos = {}
    for layer in sorted({n["layer"] for n in nodes}):
        members = [i for i, n in enumerate(nodes) if n["layer"] == layer]
        for k, i in enumerate(members):
            pos[i] = (layer, k - (len(members) - 1) / 2)
    for r in dependencies.pairs:
        if r["edge"] is None:
            continue
        src, dst = (r["i"], r["j"]) if r["edge"] == "i->j" else (r["j"], r["i"])
        colour = "tab:red" if r["interaction"] > 0 else "tab:blue"
        ax.annotate("", xy=pos[dst], xytext=pos[src], zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.5, "shrinkA": 12, "shrinkB": 12,
                                "connectionstyle": "arc3,rad=0.15"})
    for i, n in enumerate(nodes):
        ax.scatter(*pos[i], s=200 + 3000 * max(n["drop"], 0), color="tab:orange", zorder=2, edgecolor="black")
        ax.annotate(f"{n['layer']}:{n['cluster']}\n{100 * n['drop']:.1f}", pos[i], ha="center", va="center",
                    fontsize=7, zorder=3)
    ax.set_xlabel("hidden layer")
    ax.set_yticks([])
    layers = sorted({n["layer"] for n in nodes}) or [1]
    ax.set_xticks(layers)
    ax.set_xlim(min(layers) - 0.6, max(layers) + 0.6)
    ax.set_title("Dependencies (X -> Y: Y depends on X; red: interaction > 0, blue: < 0); "
                 "label: layer:cluster, drop in points", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "dependencies.png", dpi=90)
    files.append("dependencies.png")
    return files
