"""Activation graphs (issue 16, item 1): memory and time of from_activations, and the 2021 numbers (REFERENCE.md 6e).

(a) Peak memory and time of ``netmod.from_activations`` on the first 6 000 and on all 60 000 MNIST
    training images, for the full MLP (784-256-256-256-256-10, ``keras_like_mlp(seed=0)``, 1024 hidden
    units), Spearman (default ``memory_budget``, 256 MiB, and 64 MiB) and Pearson, against the plain
    reference in the same run: forward hooks on the ReLUs, the (examples x units) float64 matrix in
    memory, ``scipy.stats.spearmanr`` (``np.corrcoef`` for Pearson). Each case runs in a fresh
    subprocess; the peak is the kernel's high-water mark VmHWM, reset through /proc/self/clear_refs
    once the model and the data are loaded, so "call" is how far the call raises the peak above the
    RSS before it (as bench_memory.py measures).
(b) A trained pruned + dropout MNIST MLP (REFERENCE.md 5: 20 epochs with dropout 0.5, then 20 epochs of
    magnitude pruning to 90 %; ``netmod.training.train_mlp`` + ``prune_mlp``, seed 0, 1 torch thread):
    its activation graph on the 10 000 MNIST test images (Spearman, post-ReLU), the n-cut of its
    spectral partition (k=12, seed 0), a 100-shuffle ``shuffle="edges"`` null (the 2021 null), and
    ``netmod.compare_activations`` against the weight graph's partition (k=12): NMI with a
    100-permutation p-value, the transfer n-cut, mean r^2 within vs between weight clusters. Beside
    REFERENCE.md 6e: activation n-cuts 7.7-9.5, all at percentile 1/101, NMI 0.04-0.31. The figure
    results/activations/activation_vs_weight.png shows the activation graph's r^2 matrix sorted by the
    weight clusters and by the activation clusters.

Run: python bench/bench_activations.py [--part a|b|ab] [--cache DIR]   (Linux; MNIST via NETMOD_DATA)
Threads: torch and BLAS at 1 thread, the null at n_threads=1 (a 2-core machine shared with others).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "activations"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

CHILD = r"""
import json, sys, time
import numpy as np

def kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

import torch, scipy.stats, netmod
from netmod.torch_models import keras_like_mlp
torch.set_num_threads(1)
n, statistic, how, budget = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
images = netmod.datasets.load("mnist", "train").images[:n]
model = keras_like_mlp((784, 256, 256, 256, 256, 10), seed=0)
torch.zeros(1)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = kib("VmRSS")
t0 = time.perf_counter()
if how == "netmod":
    g = netmod.from_activations(model, images, statistic=statistic, memory_budget=budget)
    info = {"edges": g.ecount(), "spilled": g["spilled"], "zero_variance": len(g["zero_variance"])}
else:
    acts = {}
    relus = [m for m in model if isinstance(m, torch.nn.ReLU)]
    hooks = [m.register_forward_hook(lambda m, i, o: acts.setdefault(id(m), []).append(o.double().numpy()))
             for m in relus]
    with torch.no_grad():
        x = torch.as_tensor(images.reshape(n, -1).astype(np.float32) / 255.0)
        for a in range(0, n, 512):
            model(x[a:a + 512])
    a = np.hstack([np.vstack(acts[id(m)]) for m in relus])
    del acts
    r = scipy.stats.spearmanr(a).statistic if statistic == "spearman" else np.corrcoef(a, rowvar=False)
    r2 = np.nan_to_num(r * r)
    info = {"edges": int((np.triu(r2, 1) > 0).sum())}
seconds = time.perf_counter() - t0
print(json.dumps({"n": n, "statistic": statistic, "how": how, "budget": budget, "seconds": seconds,
                  "before_mib": before / 1024, "call_mib": (kib("VmHWM") - before) / 1024,
                  "total_mib": kib("VmHWM") / 1024, **info}))
"""


def part_a() -> list:
    env = {**os.environ, **ONE_THREAD}
    cases = [(6000, "spearman", "netmod", 1 << 28), (60000, "spearman", "netmod", 1 << 28),
             (60000, "spearman", "netmod", 1 << 26), (6000, "pearson", "netmod", 1 << 28),
             (60000, "pearson", "netmod", 1 << 28), (6000, "spearman", "scipy", 0),
             (60000, "spearman", "scipy", 0), (60000, "pearson", "scipy", 0)]
    rows = []
    for n, statistic, how, budget in cases:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), statistic, how, str(budget)], env=env,
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{how:7s} {statistic:9s} n={n:6d} budget={budget >> 20:4d} MiB: {row['seconds']:7.2f} s, call peak "
              f"+{row['call_mib']:7.1f} MiB (total {row['total_mib']:7.1f} MiB)"
              + (f", spilled={row['spilled']}" if "spilled" in row else ""), flush=True)
    return rows


def trained_model(cache: Path):
    import torch

    import netmod
    from netmod.training import load_model, prune_mlp, save_model, train_mlp

    path = cache / "mnist-pruned-dropout-seed0.pt"
    if path.exists():
        model, meta = load_model(path)
        return model, meta
    torch.set_num_threads(1)
    train = netmod.datasets.load("mnist", "train")
    test = netmod.datasets.load("mnist", "test")
    t0 = time.perf_counter()
    model, r1 = train_mlp((train.images, train.labels), dropout=0.5, seed=0, test=(test.images, test.labels))
    model, r2 = prune_mlp(model, (train.images, train.labels), seed=0, test=(test.images, test.labels))
    meta = {"unpruned_accuracy": r1.test_accuracy, "test_accuracy": r2.test_accuracy, "sparsity": r2.sparsity,
            "train_seconds": time.perf_counter() - t0}
    cache.mkdir(parents=True, exist_ok=True)
    save_model(model, path, **meta)
    return model, meta


def figure(g, comparison, path: Path) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    n = g.vcount()
    a = np.asarray(g.get_adjacency_sparse(attribute="weight").toarray())
    layer = np.asarray(g.vs["layer"])
    fig = Figure(figsize=(12, 5.4), dpi=110, layout="constrained")
    for ax, labels, title in ((fig.add_subplot(1, 2, 1), comparison.weight_labels, "sorted by weight clusters"),
                              (fig.add_subplot(1, 2, 2), comparison.activation_labels,
                               "sorted by activation clusters")):
        # Units left out (-1) last; within a cluster, by layer then unit.
        key = np.where(labels >= 0, labels, labels.max() + 1)
        order = np.lexsort((np.arange(n), layer, key))
        m = np.sqrt(a[np.ix_(order, order)])
        f = 4  # mean |r| over 4 x 4 blocks of units: the figure stays small and still shows every cluster
        cut = n - n % f
        m = m[:cut, :cut].reshape(cut // f, f, cut // f, f).mean(axis=(1, 3))
        im = ax.imshow(m, cmap="magma", vmin=0, vmax=1, interpolation="nearest", extent=(0, cut, cut, 0))
        bounds = np.flatnonzero(np.diff(key[order])) + 0.5
        for b in bounds:
            ax.axhline(b, color="cyan", lw=0.6)
            ax.axvline(b, color="cyan", lw=0.6)
        ax.set_title(f"|Spearman r| of hidden units (mean over 4x4 blocks), {title}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=fig.axes, shrink=0.9, label="|r|")
    fig.suptitle(f"Pruned + dropout MNIST MLP, 1024 hidden units: NMI {comparison.nmi:.3f} (p={comparison.nmi_p:.3f}), "
                 f"transfer n-cut {comparison.transfer_ncut:.2f} vs activation n-cut {comparison.activation_ncut:.2f} "
                 f"(k=12)", fontsize=10)
    fig.savefig(path)


def part_b(cache: Path) -> dict:
    import numpy as np
    import torch

    import netmod

    torch.set_num_threads(1)
    model, meta = trained_model(cache)
    print(f"model: test accuracy {meta['test_accuracy']:.4f}, sparsity {meta['sparsity']}", flush=True)
    test = netmod.datasets.load("mnist", "test")
    t0 = time.perf_counter()
    g = netmod.from_activations(model, test)
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    part = netmod.spectral_clustering(g, n_clusters=12, seed=0, n_threads=1)
    t_cluster = time.perf_counter() - t0
    print(f"activation graph: {g.vcount()} units, {g.ecount()} edges, {len(g['zero_variance'])} constant, "
          f"{t_graph:.1f} s; n-cut k=12 {part.ncut:.4f} ({t_cluster:.2f} s)", flush=True)
    out = {"model": meta, "units": g.vcount(), "edges": g.ecount(), "zero_variance": len(g["zero_variance"]),
           "graph_seconds": t_graph, "ncut": part.ncut, "cluster_seconds": t_cluster}
    if "edges" in netmod.nulls.SHUFFLES:
        t0 = time.perf_counter()
        null = netmod.shuffle_null(g, shuffle="edges", n_shuffles=100, n_clusters=12, seed=0, n_threads=1,
                                   progress=False)
        out["null"] = {"mean": null.mean, "std": null.std, "zscore": null.zscore, "percentile": null.percentile,
                       "seconds": time.perf_counter() - t0, "observed": null.observed}
        print(f"edges null (100): mean {null.mean:.4f} +- {null.std:.4f}, z {null.zscore:.1f}, percentile "
              f"{null.percentile:.4f} ({out['null']['seconds']:.0f} s)", flush=True)
    else:
        print("shuffle='edges' is not in netmod.nulls.SHUFFLES yet: null skipped", flush=True)
    weights = netmod.from_torch(model)
    wpart = netmod.spectral_clustering(weights, n_clusters=12, seed=0, n_threads=1)
    cmp = netmod.compare_activations(g, weights=weights, weight_labels=wpart, labels=part, seed=0, n_threads=1)
    out["weight_ncut"] = wpart.ncut
    out["comparison"] = {k: v for k, v in cmp.to_dict().items() if k not in ("activation_labels", "weight_labels",
                                                                             "nmi_null", "versions")}
    out["comparison"]["nmi_null_mean"] = float(np.mean(cmp.nmi_null))
    out["comparison"]["nmi_null_max"] = float(np.max(cmp.nmi_null))
    print(f"weight graph n-cut k=12 {wpart.ncut:.4f}; {cmp}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    figure(g, cmp, OUT / "activation_vs_weight.png")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="ab")
    parser.add_argument("--cache", default="/tmp/netmod-bench-activations", type=Path)
    args = parser.parse_args()
    for k, v in ONE_THREAD.items():
        os.environ.setdefault(k, v)
    results = {"machine": {"python": platform.python_version(), "cores": os.cpu_count()}}
    if "a" in args.part:
        results["memory"] = part_a()
    if "b" in args.part:
        results["trained"] = part_b(args.cache)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"bench_{args.part}.json"
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
