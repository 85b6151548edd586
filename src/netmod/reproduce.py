"""Reproduce the modularity papers end to end (REFERENCE.md 5 and 6).

Trains the four conditions (unpruned, unpruned + dropout, pruned, pruned +
dropout; a pruned net continues from the unpruned net of the same seed and
dropout setting), clusters every network, compares it with its weight-shuffled
nulls and writes ``results.json``, ``results.csv``, ``report.md`` (our numbers
beside the published ones) and PNG figures.

Re-running with the same output (or models) directory reuses every trained
network whose recorded settings match, so an interrupted run resumes.
Training is deterministic for a seed and a number of torch threads (the
count is recorded with each network): PyTorch's CPU reductions are ordered by
thread, so another thread count gives slightly different networks.

Examples
--------
>>> p = PROTOCOLS["2020"]
>>> p.n_clusters, p.nulls, p.n_shuffles
(4, ('layer', 'nonzero'), 320)
>>> [c.name for c in CONDITIONS]
['unpruned', 'unpruned+dropout', 'pruned', 'pruned+dropout']
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CONDITIONS",
    "PAPER",
    "PROTOCOLS",
    "Condition",
    "Protocol",
    "ReproduceConfig",
    "Reproduction",
    "reproduce",
]


@dataclass(frozen=True)
class Condition:
    """One training condition: dropout rate and whether the net is pruned."""

    name: str
    dropout: float
    pruned: bool


CONDITIONS = (
    Condition("unpruned", 0.0, False),
    Condition("unpruned+dropout", 0.5, False),
    Condition("pruned", 0.0, True),
    Condition("pruned+dropout", 0.5, True),
)
_CONDITION = {c.name: c for c in CONDITIONS}


@dataclass(frozen=True)
class Protocol:
    """Analysis settings of one paper: clusters, nulls and shuffles per network."""

    name: str
    n_clusters: int
    nulls: tuple
    n_shuffles: int
    networks: int


PROTOCOLS = {
    "2021": Protocol("2021", 12, ("layer",), 50, 5),
    "2020": Protocol("2020", 4, ("layer", "nonzero"), 320, 10),
}

# Published numbers (REFERENCE.md 6). Per (protocol, dataset, condition):
# n-cut mean, n-cut sd, test accuracy, and per null (null mean, mean z, significant count, networks).
PAPER = {
    "2021": {
        ("mnist", "unpruned"): {"ncut": 10.024, "sd": 0.017, "acc": 0.980, "layer": (10.165, -4.5, 5, 5)},
        ("mnist", "unpruned+dropout"): {"ncut": 9.971, "sd": 0.082, "acc": 0.980, "layer": (10.295, -3.0, 5, 5)},
        ("mnist", "pruned"): {"ncut": 8.880, "sd": 0.049, "acc": 0.984, "layer": (9.183, -9.7, 5, 5)},
        ("mnist", "pruned+dropout"): {"ncut": 8.350, "sd": 0.046, "acc": 0.980, "layer": (9.247, -24.0, 5, 5)},
        ("fashion-mnist", "unpruned"): {"ncut": 9.885, "sd": 0.026, "acc": 0.891, "layer": (10.080, -5.4, 5, 5)},
        ("fashion-mnist", "unpruned+dropout"): {"ncut": 9.698, "sd": 0.029, "acc": 0.872,
                                                "layer": (10.052, -10.7, 5, 5)},
        ("fashion-mnist", "pruned"): {"ncut": 8.687, "sd": 0.142, "acc": 0.895, "layer": (9.032, -10.3, 5, 5)},
        ("fashion-mnist", "pruned+dropout"): {"ncut": 8.110, "sd": 0.087, "acc": 0.867,
                                              "layer": (9.131, -24.7, 5, 5)},
    },
    "2020": {
        ("mnist", "pruned"): {"ncut": 2.000, "sd": 0.035, "acc": 0.984,
                              "layer": (2.043, -2.7, 7, 10), "nonzero": (2.066, -2.5, 8, 10)},
        ("mnist", "pruned+dropout"): {"ncut": 1.840, "sd": 0.015, "acc": 0.979,
                                      "layer": (2.036, -11.9, 10, 10), "nonzero": (1.905, -6.1, 9, 10)},
        ("fashion-mnist", "pruned"): {"ncut": 1.880, "sd": 0.030, "acc": 0.893,
                                      "layer": (1.993, -6.5, 10, 10), "nonzero": (1.940, -0.8, 0, 10)},
        ("fashion-mnist", "pruned+dropout"): {"ncut": 1.726, "sd": 0.022, "acc": 0.869,
                                              "layer": (2.014, -17.0, 10, 10), "nonzero": (1.799, -6.7, 8, 10)},
        # One net each, unpruned n-cut (the 2020 paper's unpruned -> pruned figures).
        ("mnist", "unpruned"): {"ncut": 2.46},
        ("mnist", "unpruned+dropout"): {"ncut": 2.31},
        ("fashion-mnist", "unpruned"): {"ncut": 2.18},
        ("fashion-mnist", "unpruned+dropout"): {"ncut": 2.14},
    },
}


@dataclass
class ReproduceConfig:
    """Everything that determines a reproduction run (recorded in results.json).

    ``dataset`` is "mnist", "fashion-mnist" or "embedded" (the MNIST test
    split shipped with netmod, cut 8000/2000 into train and test).
    """

    dataset: str = "mnist"
    protocol: str = "2021"
    networks: int | None = None
    n_clusters: int | None = None
    nulls: tuple | None = None
    n_shuffles: int | None = None
    epochs: int = 20
    prune_epochs: int = 20
    sizes: tuple = (784, 256, 256, 256, 256, 10)
    seed: int = 0
    data_dir: str | None = None
    n_threads: int | None = None
    quick: bool = False

    def __post_init__(self):
        from .graphs import check_int

        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}")
        p = PROTOCOLS[self.protocol]
        self.networks = p.networks if self.networks is None else self.networks
        self.n_clusters = p.n_clusters if self.n_clusters is None else self.n_clusters
        self.nulls = p.nulls if self.nulls is None else tuple(self.nulls)
        self.n_shuffles = p.n_shuffles if self.n_shuffles is None else self.n_shuffles
        self.sizes = tuple(int(s) for s in self.sizes)
        for name in ("networks", "n_clusters", "n_shuffles", "epochs", "prune_epochs"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.seed, "seed", minimum=0)
        if self.dataset not in ("mnist", "fashion-mnist", "embedded"):
            raise ValueError(f"dataset must be 'mnist', 'fashion-mnist' or 'embedded', got {self.dataset!r}")
        bad = [m for m in self.nulls if m not in ("layer", "nonzero")]
        if bad or not self.nulls:
            raise ValueError(f"nulls must be a non-empty subset of ('layer', 'nonzero'), got {self.nulls!r}")
        if len(self.sizes) < 3 or self.sizes[0] != 784 or self.sizes[-1] != 10:
            raise ValueError(f"sizes must start at 784 and end at 10 with a hidden layer between, got {self.sizes}")

    @classmethod
    def quick_config(cls, **overrides) -> ReproduceConfig:
        """The ``--quick`` run: embedded data, one net per condition, 10+10 epochs."""
        settings = {"dataset": "embedded", "networks": 1, "epochs": 10, "prune_epochs": 10, "quick": True}
        settings.update(overrides)
        return cls(**settings)

    @property
    def paper_dataset(self) -> str:
        """The dataset whose published numbers this run compares with."""
        return "mnist" if self.dataset == "embedded" else self.dataset


@dataclass
class Reproduction:
    """The outcome of :func:`reproduce`: one row per (network, null), summaries, timings."""

    config: ReproduceConfig
    rows: list
    summary: list
    claims: dict
    timings: dict
    data_source: str
    versions: dict = field(default_factory=dict)
    files: list = field(default_factory=list)

    def to_dict(self) -> dict:
        cfg = asdict(self.config)
        return {"config": cfg, "data_source": self.data_source, "rows": self.rows, "summary": self.summary,
                "claims": self.claims, "timings": self.timings, "versions": self.versions}


def _load_data(config: ReproduceConfig, log: Callable, download: bool = True) -> tuple:
    from . import datasets

    if config.dataset == "embedded":
        train, test = datasets.load_embedded("train"), datasets.load_embedded("test")
    else:
        try:
            train = datasets.load(config.dataset, "train", data_dir=config.data_dir, download=download)
            test = datasets.load(config.dataset, "test", data_dir=config.data_dir, download=download)
        except FileNotFoundError as err:
            if config.dataset != "mnist":
                raise
            log(f"warning: full MNIST not found ({err}); using the embedded MNIST test split instead")
            config.dataset = "embedded"
            return _load_data(config, log, download)
    return (train.images, train.labels), (test.images, test.labels), f"{train.name} ({train.source})"


def _model_path(models: Path, config: ReproduceConfig, condition: Condition, seed: int) -> Path:
    return models / f"{config.dataset}-{condition.name}-seed{seed}.pt"


def _training_key(config: ReproduceConfig, condition: Condition, seed: int) -> dict:
    key = {"dataset": config.dataset, "condition": condition.name, "seed": seed, "sizes": list(config.sizes),
           "dropout": condition.dropout, "epochs": config.epochs}
    if condition.pruned:
        key.update(prune_epochs=config.prune_epochs, initial_sparsity=0.5, final_sparsity=0.9, frequency=10)
    return key


def _reuse(path: Path, key: dict):
    """A saved model if its metadata matches ``key``; None if there is none; an error if it differs."""
    from .training import load_model

    if not path.exists() or not path.with_suffix(".json").exists():
        return None
    model, meta = load_model(path)
    differs = {k: (meta.get(k), v) for k, v in key.items() if meta.get(k) != v}
    if differs:
        raise ValueError(f"{path} was trained with other settings {differs} (saved, requested); "
                         f"use another --out/--models directory or delete the file")
    return model, meta


def _trained(models, config, condition, seed, log, fit):
    """The saved network of (condition, seed) if its settings match, else ``fit()``'s, saved: (model, meta)."""
    import torch

    from .training import save_model

    path = _model_path(models, config, condition, seed)
    key = _training_key(config, condition, seed)
    reused = _reuse(path, key)
    if reused is not None:
        return reused
    t0 = time.perf_counter()
    model, res = fit()
    meta = {**key, "test_accuracy": res.test_accuracy, "train_seconds": time.perf_counter() - t0,
            "final_loss": res.losses[-1], "torch_threads": torch.get_num_threads()}
    sparsity = ""
    if condition.pruned:
        meta["sparsity"] = res.sparsity
        sparsity = f", sparsity {np.mean(res.sparsity):.3f}"
    save_model(model, path, **meta)
    model.eval()
    log(f"  trained {condition.name:<17} seed {seed}: accuracy {res.test_accuracy:.4f}{sparsity} "
        f"({meta['train_seconds']:.0f} s)")
    return model, meta


def _train_seed(config, seed, train, test, models, log, progress):
    """The four networks of one seed, trained or reused: {condition name: (model, meta)}."""
    import copy

    from .training import prune_mlp, train_mlp

    out = {}
    for dense, pruned in ((CONDITIONS[0], CONDITIONS[2]), (CONDITIONS[1], CONDITIONS[3])):
        base = _trained(models, config, dense, seed, log, lambda d=dense: train_mlp(
            train, sizes=config.sizes, dropout=d.dropout, epochs=config.epochs, seed=seed, test=test,
            progress=progress))
        out[dense.name] = base
        out[pruned.name] = _trained(models, config, pruned, seed, log, lambda b=base: prune_mlp(
            copy.deepcopy(b[0]), train, epochs=config.prune_epochs, seed=seed, test=test, progress=progress))
    return out


def _analyse(config, condition, seed, model, meta):
    """n-cut and null statistics of one network under every null: rows, graph, partition, nulls."""
    from . import from_torch, shuffle_null, spectral_clustering

    graph = from_torch(model)
    null_seed = 1_000_003 * (seed + 1) + config.n_clusters
    partition = spectral_clustering(graph, n_clusters=config.n_clusters, seed=null_seed, n_threads=config.n_threads)
    rows, nulls = [], {}
    for method in config.nulls:
        null = shuffle_null(graph, n_shuffles=config.n_shuffles, method=method, n_clusters=config.n_clusters,
                            seed=null_seed, n_threads=config.n_threads, progress=False)
        nulls[method] = null
        sparsity = meta.get("sparsity")
        rows.append({
            "dataset": config.dataset, "condition": condition.name, "seed": seed, "n_clusters": config.n_clusters,
            "null": method, "n_shuffles": config.n_shuffles, "null_seed": null_seed,
            "ncut": null.observed, "null_mean": null.mean, "null_std": null.std, "zscore": null.zscore,
            "percentile": null.percentile, "significant": bool(null.significant),
            "test_accuracy": meta.get("test_accuracy"),
            "sparsity": None if sparsity is None else float(np.mean(sparsity)),
            "train_seconds": meta.get("train_seconds"), "cluster_sizes": partition.sizes.tolist(),
        })
    return rows, graph, partition, nulls


def _mean_sd(values):
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _summarise(config: ReproduceConfig, rows: list) -> list:
    from .nulls import combine_percentiles

    paper = PAPER.get(config.protocol, {})
    out = []
    for cond in CONDITIONS:
        for method in config.nulls:
            sel = [r for r in rows if r["condition"] == cond.name and r["null"] == method]
            if not sel:
                continue
            ncut_mean, ncut_sd = _mean_sd([r["ncut"] for r in sel])
            ref = paper.get((config.paper_dataset, cond.name), {})
            ref_null = ref.get(method)
            out.append({
                "condition": cond.name, "null": method, "networks": len(sel),
                "ncut_mean": ncut_mean, "ncut_sd": ncut_sd,
                "null_mean": float(np.mean([r["null_mean"] for r in sel])),
                "mean_z": float(np.mean([r["zscore"] for r in sel])),
                "significant": int(sum(r["significant"] for r in sel)),
                "combined_p": float(combine_percentiles([r["percentile"] for r in sel], config.n_shuffles)),
                "test_accuracy": float(np.mean([r["test_accuracy"] for r in sel])),
                "paper_ncut": ref.get("ncut"), "paper_sd": ref.get("sd"), "paper_acc": ref.get("acc"),
                "paper_null_mean": ref_null[0] if ref_null else None,
                "paper_mean_z": ref_null[1] if ref_null else None,
                "paper_significant": f"{ref_null[2]}/{ref_null[3]}" if ref_null else None,
            })
    return out


def _claims(config: ReproduceConfig, summary: list) -> dict:
    """The checks of REFERENCE.md 6 on this run's means (first null listed for significance)."""
    by = {(s["condition"], s["null"]): s for s in summary}
    null = config.nulls[0]

    def ncut(c):
        return by[(c, null)]["ncut_mean"]

    claims = {
        "pruned < unpruned": {"holds": ncut("pruned") < ncut("unpruned"),
                              "values": [ncut("pruned"), ncut("unpruned")]},
        "pruned+dropout < pruned": {"holds": ncut("pruned+dropout") < ncut("pruned"),
                                    "values": [ncut("pruned+dropout"), ncut("pruned")]},
    }
    for c in ("pruned", "pruned+dropout"):
        for m in config.nulls:
            s = by[(c, m)]
            claims[f"{c} significant ({m} null)"] = {"holds": s["significant"] == s["networks"],
                                                     "values": [s["significant"], s["networks"]]}
    if len(config.nulls) > 1 and "nonzero" in config.nulls:
        z = {m: np.mean([by[(c, m)]["mean_z"] for c in ("pruned", "pruned+dropout")]) for m in config.nulls}
        claims["nonzero null harder to beat than layer"] = {"holds": bool(z["nonzero"] > z["layer"]),
                                                            "values": [float(z["nonzero"]), float(z["layer"])]}
    return {k: {"holds": bool(v["holds"]), "values": v["values"]} for k, v in claims.items()}


def _fmt(value, spec):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _report(result: Reproduction) -> str:
    cfg = result.config
    lines = [
        f"# netmod reproduction: {cfg.dataset}, {cfg.protocol} protocol",
        "",
        (f"Data: {result.data_source}. MLP {'-'.join(map(str, cfg.sizes))}, {cfg.epochs} training epochs, "
         f"{cfg.prune_epochs} pruning epochs (50% -> 90% sparsity, cubic schedule); {cfg.networks} network(s) per "
         f"condition, seeds {cfg.seed}..{cfg.seed + cfg.networks - 1}. Spectral clustering k={cfg.n_clusters}; "
         f"nulls: {', '.join(cfg.nulls)}, {cfg.n_shuffles} shuffles each."),
        "",
        f"Published numbers: {cfg.protocol} protocol of REFERENCE.md 6"
        + (" (full MNIST; this run used a smaller training set, so only the direction of the claims "
           "is comparable)." if cfg.dataset == "embedded" else "."),
        "",
        ("| condition | null | nets | n-cut mean +- sd | paper | null mean | paper | mean z | paper "
         "| significant | paper | test acc | paper |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.summary:
        paper_ncut = "-" if s["paper_ncut"] is None else (
            f"{s['paper_ncut']:.3f}" + ("" if s["paper_sd"] is None else f" +- {s['paper_sd']:.3f}"))
        lines.append(
            f"| {s['condition']} | {s['null']} | {s['networks']} | {s['ncut_mean']:.3f} +- {s['ncut_sd']:.3f} "
            f"| {paper_ncut} | {s['null_mean']:.3f} | {_fmt(s['paper_null_mean'], '.3f')} | {s['mean_z']:.1f} "
            f"| {_fmt(s['paper_mean_z'], '.1f')} | {s['significant']}/{s['networks']} "
            f"| {s['paper_significant'] or '-'} | {s['test_accuracy']:.3f} | {_fmt(s['paper_acc'], '.3f')} |")
    lines += ["", "Significant = observed n-cut below every shuffle; z uses the population sd of the null.",
              "", "## Claims", ""]
    for name, c in result.claims.items():
        vals = ", ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in c["values"])
        lines.append(f"- {'holds' if c['holds'] else 'FAILS'}: {name} ({vals})")
    t = result.timings
    lines += ["", "## Per network", "",
              "| condition | seed | null | n-cut | null mean | z | percentile | test acc | sparsity |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        lines.append(f"| {r['condition']} | {r['seed']} | {r['null']} | {r['ncut']:.4f} | {r['null_mean']:.4f} "
                     f"| {r['zscore']:.2f} | {r['percentile']:.4f} | {r['test_accuracy']:.4f} "
                     f"| {_fmt(r['sparsity'], '.3f')} |")
    lines += ["", "## Timing", "",
              (f"Training {t['training_seconds']:.0f} s (this run; reused networks count their recorded time "
               f"{t['recorded_training_seconds']:.0f} s), analysis {t['analysis_seconds']:.0f} s, "
               f"total {t['total_seconds']:.0f} s."), "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(result.versions.items())), ""]
    if result.files:
        lines += ["Figures: " + ", ".join(f"[{f}]({f})" for f in result.files if f.endswith(".png")), ""]
    return "\n".join(lines)


def _write_csv(path: Path, rows: list) -> None:
    fields = [k for k in rows[0] if k != "cluster_sizes"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _figures(out: Path, result: Reproduction, examples: dict) -> list:
    """PNG figures; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .graphs import layer_weights

    cfg = result.config
    files = []
    # 1. Null histograms with the observed n-cut, one panel per condition and null (first network).
    nulls = cfg.nulls
    fig, axes = plt.subplots(len(nulls), len(CONDITIONS), figsize=(4 * len(CONDITIONS), 3 * len(nulls)),
                             squeeze=False)
    for j, cond in enumerate(CONDITIONS):
        _, _, null_dists = examples[cond.name]
        for i, m in enumerate(nulls):
            ax, null = axes[i][j], null_dists[m]
            ax.hist(null.samples, bins=20, color="0.6", label=f"{m} shuffles (n={null.n_shuffles})")
            ax.axvline(null.observed, color="C3", lw=2, label="observed")
            ax.set_title(f"{cond.name}\nz = {null.zscore:.1f}", fontsize=9)
            ax.set_xlabel("n-cut")
            if j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"{cfg.dataset}: observed n-cut vs weight-shuffled nulls (seed {cfg.seed}, k={cfg.n_clusters})")
    fig.tight_layout()
    fig.savefig(out / "null_histograms.png", dpi=90)
    plt.close(fig)
    files.append("null_histograms.png")

    # 2. n-cut by condition: every network, its null mean, the paper's mean.
    fig, ax = plt.subplots(figsize=(7, 4))
    m = nulls[0]
    for j, cond in enumerate(CONDITIONS):
        sel = [r for r in result.rows if r["condition"] == cond.name and r["null"] == m]
        xs = j + np.linspace(-0.1, 0.1, len(sel)) if len(sel) > 1 else [j]
        ax.scatter(xs, [r["ncut"] for r in sel], color="C0", zorder=3, label="observed" if j == 0 else None)
        ax.scatter(xs, [r["null_mean"] for r in sel], color="0.5", marker="x",
                   label=f"{m}-null mean" if j == 0 else None)
        s = next(s for s in result.summary if s["condition"] == cond.name and s["null"] == m)
        if s["paper_ncut"] is not None:
            ax.plot([j - 0.25, j + 0.25], [s["paper_ncut"]] * 2, color="C1", lw=2,
                    label="paper mean" if j == 0 else None)
    ax.set_xticks(range(len(CONDITIONS)), [c.name for c in CONDITIONS])
    ax.set_ylabel(f"n-cut (k={cfg.n_clusters})")
    ax.set_title(f"{cfg.dataset}, {cfg.protocol} protocol")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ncut_by_condition.png", dpi=90)
    plt.close(fig)
    files.append("ncut_by_condition.png")

    # 3. Cluster-sorted adjacency of each condition's first network.
    fig, axes = plt.subplots(1, len(CONDITIONS), figsize=(4 * len(CONDITIONS), 4.2))
    for ax, cond in zip(axes, CONDITIONS):
        graph, partition, _ = examples[cond.name]
        ws = layer_weights(graph)
        sizes = [ws[0].shape[0]] + [w.shape[1] for w in ws]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        n = offsets[-1]
        adj = np.zeros((n, n), dtype=np.float32)
        for i, w in enumerate(ws):
            block = np.abs(w).astype(np.float32)
            adj[offsets[i]:offsets[i + 1], offsets[i + 1]:offsets[i + 2]] = block
            adj[offsets[i + 1]:offsets[i + 2], offsets[i]:offsets[i + 1]] = block.T
        labels = np.asarray(partition.labels)
        live = labels >= 0
        layer = np.repeat(np.arange(len(sizes)), sizes)
        order = np.lexsort((layer[live], labels[live]))
        idx = np.flatnonzero(live)[order]
        a = adj[np.ix_(idx, idx)]
        ax.imshow(np.log1p(a / (a[a > 0].mean() if (a > 0).any() else 1.0)), cmap="Greys", interpolation="nearest")
        bounds = np.cumsum(np.bincount(labels[live]))[:-1]
        for b in bounds:
            ax.axhline(b - 0.5, color="C3", lw=0.4)
            ax.axvline(b - 0.5, color="C3", lw=0.4)
        ax.set_title(f"{cond.name}: n-cut {partition.ncut:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"|W| of the seed-{cfg.seed} networks, units sorted by cluster (then layer)")
    fig.tight_layout()
    fig.savefig(out / "clusters.png", dpi=90)
    plt.close(fig)
    files.append("clusters.png")
    return files


def reproduce(config: ReproduceConfig, out: str | Path, *, models: str | Path | None = None,
              progress: bool | None = None, log: Callable = print, figures: bool = True,
              download: bool = True) -> Reproduction:
    """Train (or reuse) the four conditions, analyse them and write the artefacts to ``out``.

    Parameters
    ----------
    config : ReproduceConfig
    out : path
        Receives results.json, results.csv, report.md and the PNG figures.
    models : path, optional
        Where trained networks are saved and looked for (default ``out/models``).
        Saved networks whose settings match are reused, so re-running resumes.
    progress : bool or None
        tqdm bars per epoch (None: only on a terminal).
    log : callable
        Receives one line per step (``print`` by default).
    figures : bool
        Write the PNG figures (matplotlib).
    download : bool
        Fetch a missing dataset from the standard mirrors where a network exists.
    """
    import torch

    from .results import versions

    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = out / "models" if models is None else Path(models)
    models.mkdir(parents=True, exist_ok=True)
    train, test, source = _load_data(config, log, download)
    log(f"netmod reproduce: {config.dataset} ({len(train[1])} train / {len(test[1])} test images), "
        f"{config.networks} network(s) x {len(CONDITIONS)} conditions, protocol {config.protocol}")

    rows, examples = [], {}
    t_train = t_analysis = 0.0
    recorded = 0.0
    for i in range(config.networks):
        seed = config.seed + i
        t0 = time.perf_counter()
        nets = _train_seed(config, seed, train, test, models, log, progress)
        t_train += time.perf_counter() - t0
        t0 = time.perf_counter()
        for cond in CONDITIONS:
            model, meta = nets[cond.name]
            recorded += float(meta.get("train_seconds") or 0.0)
            with torch.no_grad():
                net_rows, graph, partition, nulls = _analyse(config, cond, seed, model, meta)
            rows += net_rows
            if i == 0:
                examples[cond.name] = (graph, partition, nulls)
            first = net_rows[0]
            log(f"  {cond.name:<17} seed {seed}: n-cut {first['ncut']:.4f}, " + ", ".join(
                f"{r['null']} null {r['null_mean']:.4f} (z {r['zscore']:.1f}{', significant' if r['significant'] else ''})"
                for r in net_rows))
        t_analysis += time.perf_counter() - t0

    summary = _summarise(config, rows)
    result = Reproduction(config=config, rows=rows, summary=summary, claims=_claims(config, summary),
                          timings={}, data_source=source,
                          versions={**versions(), "torch": torch.__version__})
    if figures:
        result.files = _figures(out, result, examples)
    result.timings = {"training_seconds": t_train, "recorded_training_seconds": recorded,
                      "analysis_seconds": t_analysis, "total_seconds": time.perf_counter() - t_start}
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2))
    _write_csv(out / "results.csv", rows)
    (out / "report.md").write_text(_report(result))
    result.files = ["results.json", "results.csv", "report.md"] + result.files
    return result
