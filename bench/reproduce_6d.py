"""Reproduce REFERENCE.md 6d (the clusterability regulariser), then run it on the full-size MLP.

Part "6d": a 49-64-64-64-10 ReLU MLP on MNIST downsampled to 7x7 by 4x4 mean pooling of the
28x28 images (pixel values averaged, still on the 0-255 scale, divided by 255 by train_mlp).
Per seed, four networks:

- control, unpruned: train_mlp(20 epochs), the papers' protocol (Adam 1e-3, batch 128, Glorot init);
- regularised, unpruned: the same with clusterability=0.1, m=3 (penalty (0.1/3) * (lambda_2 +
  lambda_3 + lambda_4), hidden units L1-balanced every batch);
- control, pruned / regularised, pruned: prune_mlp from that seed's unpruned weights, 20 epochs,
  sparsity 50% -> 90% (cubic), the regularised run still regularised.

Each network: graph = netmod.from_torch(model); spectral_clustering(k=12) and shuffle_null(layer,
50 shuffles) with seed netmod.reproduce.null_seed(seed, 12), as netmod's reproduce does for the
2021 table; "significant" = the n-cut below every shuffle (NullDistribution.significant, the
count netmod reproduce reports). Test accuracy on the pooled MNIST test set.

Part "full": the same regularised runs on the full 784-256-256-256-256-10 MLP on 28x28 MNIST
(``--full N`` seeds), compared with netmod's own unregularised 2021 runs (results/mnist-2021).

Everything runs on one torch thread and n_threads=1. Rows are written to results.json after every
network and trained networks are kept under ``<out>/models``, so an interrupted run continues.

Run: NETMOD_DATA=... python bench/reproduce_6d.py [--networks 10] [--full 1] [--out results/regularizer]
     [--report-only]
"""

import argparse
import copy
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

import netmod
from netmod import training
from netmod.reproduce import null_seed

ROOT = Path(__file__).resolve().parents[1]
K, N_SHUFFLES, LAM, M = 12, 50, 0.1, 3
EPOCHS = PRUNE_EPOCHS = 20
PARTS = {"6d": (49, 64, 64, 64, 10), "full": (784, 256, 256, 256, 256, 10)}
CONDITIONS = ("control, unpruned", "regularised, unpruned", "control, pruned", "regularised, pruned")
# REFERENCE.md 6d: n-cut, null mean, significant (of 10), test accuracy.
PAPER_6D = {
    "control, unpruned": (10.02, 10.04, 2, 0.957),
    "regularised, unpruned": (8.93, 8.14, 1, 0.959),
    "control, pruned": (7.11, 7.43, 4, 0.934),
    "regularised, pruned": (5.51, 6.31, 7, 0.896),
}


FULL_NOTES = """Why the full-size pruned net failed (measured on seed 0, /tmp diagnostics in the task report): L1
balancing makes every unit's incoming and outgoing |w| sums equal, hence every layer's total |w| equal (3.25e4 in
each of the five layers of the unpruned net), so the 256x10 output layer's weights are ~80x larger per entry than
the 784x256 first layer's (max |w| 1.85 in layer 0, 31.9 in layer 4; 98.9 after pruning). With Adam's
scale-free steps this gave dead units (never active on the test set, unpruned: 147, 87, 200, 11 of 256 per
hidden layer) and huge logits (test-set logit sd 40 unpruned, 2904 pruned); the pruned net predicts class 1 for
9987 of 10000 test images. The penalty is what fell (0.43, graph in 304 components, 302 of them isolated units).
On the 49-64-64-64-10 net the layer sizes differ far less (3136 vs 640 weights) and training was healthy."""


def pool7(images):
    """4x4 mean pooling: (n, 28, 28) uint8 -> (n, 7, 7) float64 on the 0-255 scale."""
    return np.asarray(images, dtype=np.float64).reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4))


def data(part):
    tr, te = netmod.datasets.load("mnist", "train"), netmod.datasets.load("mnist", "test")
    if part == "6d":
        return (pool7(tr.images), tr.labels), (pool7(te.images), te.labels)
    return (tr.images, tr.labels), (te.images, te.labels)


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, check=True)
        return head.stdout.strip() + (" (src modified)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def analyse(model, seed):
    graph = netmod.from_torch(model)
    rseed = null_seed(seed, K)
    part = netmod.spectral_clustering(graph, n_clusters=K, seed=rseed, n_threads=1)
    null = netmod.shuffle_null(graph, n_shuffles=N_SHUFFLES, shuffle="layer", n_clusters=K, seed=rseed,
                               n_threads=1, progress=False)
    emb = netmod.spectral_embedding(graph, n_components=M + 2, tol=1e-12)
    return {"ncut": part.ncut, "null_mean": null.mean, "null_std": null.std, "zscore": null.zscore,
            "percentile": null.percentile, "significant": bool(null.significant), "null_seed": rseed,
            "observed_in_null": null.observed, "eigenvalues": emb.eigenvalues.tolist(),
            "penalty": float(emb.eigenvalues[1 : M + 1].sum()), "cluster_sizes": part.sizes.tolist()}


def model_path(out, part, cond, seed):
    return out / "models" / f"{part}-{cond.replace(', ', '-')}-{seed}.pt"


def fit(out, part, cond, seed, make, log):
    path = model_path(out, part, cond, seed)
    if path.exists():
        model, meta = training.load_model(path)
        return model, meta
    t0 = time.process_time()
    model, result = make()
    meta = {"test_accuracy": result.test_accuracy, "train_cpu_seconds": time.process_time() - t0,
            "sparsity": result.sparsity, "final_loss": result.losses[-1], "seed": seed, "part": part,
            "condition": cond, "torch_threads": torch.get_num_threads()}
    path.parent.mkdir(parents=True, exist_ok=True)
    training.save_model(model, path, **meta)
    log(f"  trained {part} {cond} seed {seed}: acc {result.test_accuracy:.4f}, {meta['train_cpu_seconds']:.0f} s cpu")
    return model, meta


def run_seed(out, part, seed, train, test, done, save_row, log):
    sizes = PARTS[part]
    nets = {}
    for reg in (False, True):
        lam = LAM if reg else 0.0
        name = "regularised" if reg else "control"
        if part == "full" and not reg:
            continue  # the full-size controls are netmod's own 2021 runs
        ukey, pkey = f"{name}, unpruned", f"{name}, pruned"
        if (part, ukey, seed) in done and (part, pkey, seed) in done:
            continue
        base = fit(out, part, ukey, seed, lambda lam=lam: training.train_mlp(
            train, sizes=sizes, epochs=EPOCHS, seed=seed, test=test, progress=False, clusterability=lam,
            clusterability_eigenvalues=M), log)
        nets[ukey] = base
        nets[pkey] = fit(out, part, pkey, seed, lambda lam=lam, b=base: training.prune_mlp(
            copy.deepcopy(b[0]), train, epochs=PRUNE_EPOCHS, seed=seed, test=test, progress=False,
            clusterability=lam, clusterability_eigenvalues=M), log)
    for cond, (model, meta) in nets.items():
        if (part, cond, seed) in done:
            continue
        t0 = time.process_time()
        with torch.no_grad():
            row = analyse(model, seed)
        row.update({"part": part, "condition": cond, "seed": seed, "sizes": list(sizes),
                    "test_accuracy": meta["test_accuracy"], "train_cpu_seconds": meta.get("train_cpu_seconds"),
                    "sparsity": float(np.mean(meta["sparsity"])) if meta.get("sparsity") else 0.0,
                    "analysis_cpu_seconds": time.process_time() - t0})
        save_row(row)
        log(f"  {part} {cond:<22} seed {seed}: n-cut {row['ncut']:.4f}, null {row['null_mean']:.4f} "
            f"(z {row['zscore']:.1f}{', significant' if row['significant'] else ''}), penalty {row['penalty']:.4f}, "
            f"acc {row['test_accuracy']:.4f}")


def summarise(rows, part, cond):
    sel = [r for r in rows if r["part"] == part and r["condition"] == cond]
    if not sel:
        return None
    nc = np.array([r["ncut"] for r in sel])
    return {"networks": len(sel), "ncut_mean": float(nc.mean()), "ncut_sd": float(nc.std(ddof=1)) if len(sel) > 1
            else 0.0, "ncut_min": float(nc.min()), "ncut_max": float(nc.max()),
            "null_mean": float(np.mean([r["null_mean"] for r in sel])),
            "mean_z": float(np.mean([r["zscore"] for r in sel])),
            "significant": int(sum(r["significant"] for r in sel)),
            "penalty_mean": float(np.mean([r["penalty"] for r in sel])),
            "test_accuracy": float(np.mean([r["test_accuracy"] for r in sel])),
            "train_cpu_seconds": float(np.mean([r["train_cpu_seconds"] or 0.0 for r in sel]))}


def netmod_2021_controls():
    path = ROOT / "results" / "mnist-2021" / "results.json"
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["rows"]
    out = {}
    for cond in ("unpruned", "pruned"):
        sel = [r for r in rows if r["condition"] == cond and r["null"] == "layer"]
        if sel:
            out[cond] = {"networks": len(sel), "ncut_mean": float(np.mean([r["ncut"] for r in sel])),
                         "ncut_sd": float(np.std([r["ncut"] for r in sel], ddof=1)),
                         "null_mean": float(np.mean([r["null_mean"] for r in sel])),
                         "mean_z": float(np.mean([r["zscore"] for r in sel])),
                         "significant": int(sum(r["significant"] for r in sel)),
                         "test_accuracy": float(np.mean([r["test_accuracy"] for r in sel]))}
    return out


def report(out, doc):
    rows = doc["rows"]
    lines = ["# Clusterability regulariser: REFERENCE.md 6d reproduced, and the full-size MLP", "",
             f"netmod {doc['versions'].get('netmod')}, commit {doc['git_commit']}; torch {doc['torch']}; one torch "
             f"thread, n_threads=1. k={K} spectral n-cut, `layer` null with {N_SHUFFLES} shuffles (seed "
             "`netmod.reproduce.null_seed(seed, 12)`), significant = below every shuffle (as netmod reproduce "
             f"counts it). Regulariser: lambda={LAM}, m={M} (eigenvalues 2..4), hidden units L1-balanced every "
             "batch. 20 epochs, then 20 pruning epochs (50% -> 90%, cubic) from those weights.", "",
             "## 6d: 49-64-64-64-10 MLP, MNIST 4x4-mean-pooled to 7x7", "",
             "| condition | nets | n-cut mean +- sd [min, max] | paper | null mean | paper | mean z | significant "
             "| paper | penalty (l2+l3+l4) | test acc | paper |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for cond in CONDITIONS:
        s = summarise(rows, "6d", cond)
        if s is None:
            continue
        summary[cond] = s
        p = PAPER_6D[cond]
        lines.append(f"| {cond} | {s['networks']} | {s['ncut_mean']:.3f} +- {s['ncut_sd']:.3f} [{s['ncut_min']:.2f}, "
                     f"{s['ncut_max']:.2f}] | {p[0]:.2f} | {s['null_mean']:.3f} | {p[1]:.2f} | {s['mean_z']:.1f} | "
                     f"{s['significant']}/{s['networks']} | {p[2]}/10 | {s['penalty_mean']:.4f} | "
                     f"{s['test_accuracy']:.3f} | {p[3]:.3f} |")
    lines += ["", "The paper gives means only (no spread per row); \"within\" below = the published mean lies "
              "inside our 10 networks' range [min, max].", ""]
    for cond, s in summary.items():
        p = PAPER_6D[cond][0]
        inside = s["ncut_min"] <= p <= s["ncut_max"]
        dist = f"{(s['ncut_mean'] - p) / s['ncut_sd']:+.1f} sd from it" if s["ncut_sd"] > 0 else "one net"
        lines.append(f"- {cond}: paper n-cut {p:.2f} {'inside' if inside else 'OUTSIDE'} our range "
                     f"[{s['ncut_min']:.2f}, {s['ncut_max']:.2f}] (our mean {s['ncut_mean']:.3f}, {dist})")
    full = {c: summarise(rows, "full", c) for c in ("regularised, unpruned", "regularised, pruned")}
    ctrl = netmod_2021_controls()
    if any(full.values()):
        lines += ["", "## Full-size 784-256-256-256-256-10 MLP, 28x28 MNIST", "",
                  "| condition | nets | n-cut | null mean | mean z | significant | penalty | test acc | train cpu s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for cond, s in full.items():
            if s:
                lines.append(f"| {cond} | {s['networks']} | {s['ncut_mean']:.3f} +- {s['ncut_sd']:.3f} | "
                             f"{s['null_mean']:.3f} | {s['mean_z']:.1f} | {s['significant']}/{s['networks']} | "
                             f"{s['penalty_mean']:.4f} | {s['test_accuracy']:.4f} | {s['train_cpu_seconds']:.0f} |")
        for cond, s in ctrl.items():
            lines.append(f"| control, {cond} (netmod results/mnist-2021) | {s['networks']} | {s['ncut_mean']:.3f} +- "
                         f"{s['ncut_sd']:.3f} | {s['null_mean']:.3f} | {s['mean_z']:.1f} | "
                         f"{s['significant']}/{s['networks']} | - | {s['test_accuracy']:.4f} | - |")
        lines += ["", "Published 2021 controls (REFERENCE.md 6): unpruned 10.024 (null 10.165), pruned 8.880 "
                  "(null 9.183).", "", FULL_NOTES]
    lines += ["", "## Per network", "", "| part | condition | seed | n-cut | null mean | z | significant | penalty | "
              "test acc |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['part']} | {r['condition']} | {r['seed']} | {r['ncut']:.4f} | {r['null_mean']:.4f} | "
                     f"{r['zscore']:.2f} | {r['significant']} | {r['penalty']:.4f} | {r['test_accuracy']:.4f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    doc["summary_6d"] = summary
    doc["summary_full"] = {c: s for c, s in full.items() if s}
    doc["full_controls_netmod_2021"] = ctrl
    figure(out, rows)


def figure(out, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    rng = np.random.default_rng(0)
    for i, cond in enumerate(CONDITIONS):
        sel = [r for r in rows if r["part"] == "6d" and r["condition"] == cond]
        if not sel:
            continue
        x = i + rng.uniform(-0.12, 0.12, len(sel))
        ax.scatter(x - 0.18, [r["ncut"] for r in sel], s=18, color="C0", label="n-cut (ours)" if i == 0 else None)
        ax.scatter(x + 0.18, [r["null_mean"] for r in sel], s=18, color="C1", marker="s",
                   label="null mean (ours)" if i == 0 else None)
        p = PAPER_6D[cond]
        ax.plot([i - 0.32, i - 0.04], [p[0]] * 2, color="C0", lw=2.5, label="paper n-cut" if i == 0 else None)
        ax.plot([i + 0.04, i + 0.32], [p[1]] * 2, color="C1", lw=2.5, ls="--",
                label="paper null mean" if i == 0 else None)
    ax.set_xticks(range(len(CONDITIONS)), [c.replace(", ", "\n") for c in CONDITIONS])
    ax.set_ylabel(f"n-cut (k={K})")
    ax.set_title("Clusterability regulariser, 49-64-64-64-10 MLP on 7x7 MNIST (REFERENCE.md 6d)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ncut_6d.png", dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=10, help="seeds 0..N-1 of the 6d part")
    ap.add_argument("--full", type=int, default=1, help="seeds of the full-size regularised part (0 = skip)")
    ap.add_argument("--out", default=str(ROOT / "results" / "regularizer"))
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    doc = json.loads(path.read_text()) if path.exists() else {"rows": []}
    doc.update({"versions": netmod.versions(), "git_commit": git_commit(), "torch": torch.__version__,
                "settings": {"k": K, "n_shuffles": N_SHUFFLES, "null": "layer", "lambda": LAM, "m": M,
                             "epochs": EPOCHS, "prune_epochs": PRUNE_EPOCHS, "parts": PARTS,
                             "downsampling": "4x4 mean pooling of the 28x28 images (0-255 scale)",
                             "penalty_tol": training.PENALTY_TOL,
                             "balance": "L1 balancing, 100 sweeps before the first step then 1 per step"}})
    sub = out / "full" / "results.json"  # the full-size part may run on its own (--out <out>/full) beside 6d
    if sub.exists() and sub != path:
        have = {(r["part"], r["condition"], r["seed"]) for r in doc["rows"]}
        doc["rows"] += [r for r in json.loads(sub.read_text())["rows"]
                        if (r["part"], r["condition"], r["seed"]) not in have]
    done = {(r["part"], r["condition"], r["seed"]) for r in doc["rows"]}

    def save_row(row):
        doc["rows"].append(row)
        done.add((row["part"], row["condition"], row["seed"]))
        path.write_text(json.dumps(doc, indent=1))

    def log(msg):
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    if not args.report_only:
        plan = [("6d", s) for s in range(args.networks)] + [("full", s) for s in range(args.full)]
        loaded = {}
        for part, seed in plan:
            if part not in loaded:
                loaded = {part: data(part)}
            log(f"{part} seed {seed}")
            run_seed(out, part, seed, *loaded[part], done, save_row, log)
            report(out, doc)
            path.write_text(json.dumps(doc, indent=1))
    report(out, doc)
    path.write_text(json.dumps(doc, indent=1))
    print((out / "report.md").read_text())


if __name__ == "__main__":
    main()
