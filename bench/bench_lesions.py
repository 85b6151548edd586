"""Time netmod.lesion_importance against lesions done with one full forward pass each.

Issue 6, acceptance point 4: the full single-lesion analysis of one 1818-node
MLP (784-256-256-256-256-10) at k=12 with 100 random lesions per sub-module,
on the MNIST test set (10,000 images), against the naive approach, in the
same run.

- The network: ``--model PATH`` (a file saved by netmod.training.save_model,
  e.g. a pruned MNIST MLP of ``netmod reproduce``); without it, a
  Keras-initialised MLP (netmod.torch_models.keras_like_mlp(sizes, seed=0))
  with 90% per-layer magnitude pruning, which costs the same to lesion.
- The partition: netmod.spectral_clustering(netmod.from_torch(model),
  n_clusters=12, seed=0) (timed separately, not part of the analysis time).
- netmod: lesion_importance(model, partition, test, n_draws=100, seed=0,
  progress=False), one untimed warm-up on 500 images, then ``--repeats``
  timed calls on the whole test set.
- Naive: for every lesion (each sub-module's own set and its 100 random
  sets), copies of the Linear weights and biases with the lesioned units'
  rows zeroed, then one full forward pass over all test images in batches of
  ``--batch`` (default: all at once). Only ``--naive-draws`` (default 5) of the
  101 lesions of every sub-module are timed; the time of the full naive
  analysis is that time scaled by 101 / naive-draws, and the output says so.
  The naive accuracy of each sub-module's own set is checked against
  netmod's (equal up to one test image: float32 sums in another order).

Wall and CPU times are both printed: on a machine shared with other jobs the
wall time grows with the load, the CPU time much less.

Run: python bench/bench_lesions.py [--model PATH] [--data-dir DIR] [--repeats N] [--naive-draws N] [--json]
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import netmod
import netmod.training
from netmod.torch_models import keras_like_mlp

LAYER_SIZES = (784, 256, 256, 256, 256, 10)
N_CLUSTERS = 12
N_DRAWS = 100
SPEEDUP_TARGET = 3.0
TIME_TARGET = 120.0


def default_model():
    model = keras_like_mlp(LAYER_SIZES, seed=0)
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.Linear):
                cut = m.weight.abs().flatten().kthvalue(int(0.9 * m.weight.numel())).values
                m.weight[m.weight.abs() <= cut] = 0
    return model.eval()


def test_data(data_dir):
    for d in (data_dir, os.environ.get("NETMOD_DATA"), Path(__file__).resolve().parents[2] / "shared" / "datasets"):
        if d and Path(d).exists():
            try:
                return netmod.datasets.load("mnist", "test", data_dir=d, download=False)
            except (OSError, ValueError):
                continue
    print("MNIST test set not found; using the 2,000 embedded test images")
    return netmod.datasets.load_embedded("test")


def naive_accuracy(weights, biases, lesion_layer, units, x, y, batch):
    """Accuracy with ``units`` of hidden layer ``lesion_layer`` lesioned: one full forward pass."""
    ws, bs = list(weights), list(biases)
    ws[lesion_layer - 1] = ws[lesion_layer - 1].clone()
    bs[lesion_layer - 1] = bs[lesion_layer - 1].clone()
    ws[lesion_layer - 1][units] = 0
    bs[lesion_layer - 1][units] = 0
    correct = 0
    for i in range(0, len(x), batch):
        h = x[i:i + batch]
        for k, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w.T + b
            if k + 1 < len(ws):
                h = torch.relu(h)
        correct += int((h.argmax(dim=1) == y[i:i + batch]).sum())
    return correct / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--naive-draws", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.model:
        model, _ = netmod.training.load_model(args.model)
        source = args.model
    else:
        model = default_model()
        source = "keras_like_mlp(784-256x4-10, seed=0), 90% magnitude-pruned, untrained"
    data = test_data(args.data_dir)
    images, labels = data.images, data.labels

    t0 = time.perf_counter()
    partition = netmod.spectral_clustering(netmod.from_torch(model), n_clusters=N_CLUSTERS, seed=0)
    t_cluster = time.perf_counter() - t0

    netmod.lesion_importance(model, partition, (images[:500], labels[:500]), n_draws=N_DRAWS, progress=False)
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        imp = netmod.lesion_importance(model, partition, (images, labels), n_draws=N_DRAWS, seed=0, progress=False)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    fast = min(times)

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weights = [m.weight.detach().clone() for m in linears]
    biases = [m.bias.detach().clone() for m in linears]
    x = torch.as_tensor(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    y = torch.as_tensor(labels.astype(np.int64))
    batch = args.batch or len(x)
    rng = np.random.default_rng(0)
    n_naive = min(args.naive_draws, N_DRAWS + 1)
    worst = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for row in imp.table:
        layer_labels = partition.labels[sum(LAYER_SIZES[:row["layer"]]):sum(LAYER_SIZES[:row["layer"] + 1])]
        live = np.flatnonzero(layer_labels >= 0)
        acc = naive_accuracy(weights, biases, row["layer"], torch.as_tensor(row["units"]), x, y, batch)
        worst = max(worst, abs(acc - row["accuracy"]))
        for _ in range(n_naive - 1):
            units = torch.as_tensor(rng.permutation(live)[:row["size"]])
            naive_accuracy(weights, biases, row["layer"], units, x, y, batch)
    naive_timed = time.perf_counter() - t0
    naive_cpu = (time.process_time() - c0) * (N_DRAWS + 1) / n_naive
    naive = naive_timed * (N_DRAWS + 1) / n_naive

    result = {
        "model": source,
        "n_images": len(labels),
        "n_submodules": len(imp.table),
        "submodules_per_layer": [sum(r["layer"] == layer for r in imp.table) for layer in range(1, 5)],
        "n_draws": N_DRAWS,
        "base_accuracy": imp.base_accuracy,
        "clustering_s": t_cluster,
        "netmod_s": times,
        "netmod_cpu_s": cpu,
        "naive_cpu_s_extrapolated": naive_cpu,
        "naive_s_extrapolated": naive,
        "naive_lesions_timed_per_submodule": n_naive,
        "speedup": naive / fast,
        "max_abs_accuracy_difference_own_sets": worst,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}",
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"model: {source}; {len(labels)} test images, accuracy {imp.base_accuracy:.4f}")
    print(f"k={N_CLUSTERS}: {len(imp.table)} sub-modules (per hidden layer {result['submodules_per_layer']}), "
          f"{N_DRAWS} random lesions each; clustering {t_cluster:.2f} s (not included)")
    print(f"netmod lesion_importance: best {fast:.1f} s of {[round(t, 1) for t in times]} "
          f"(CPU time {[round(t, 1) for t in cpu]} s over {torch.get_num_threads()} threads)")
    print(f"naive full forward passes: {naive:.1f} s (extrapolated from {n_naive} of {N_DRAWS + 1} lesions per "
          f"sub-module, {naive_timed:.1f} s timed; CPU time {naive_cpu:.1f} s extrapolated)")
    print(f"speedup naive/netmod: {naive / fast:.1f}x (target >= {SPEEDUP_TARGET:.0f}x: "
          f"{'met' if naive / fast >= SPEEDUP_TARGET else 'NOT met'}); netmod under {TIME_TARGET:.0f} s: "
          f"{'met' if fast < TIME_TARGET else 'NOT met'}")
    print(f"own-set accuracies, naive vs netmod: max difference {worst:.2g} "
          f"({worst * len(labels):.0f} images); torch threads {torch.get_num_threads()}; {result['machine']}")


if __name__ == "__main__":
    main()
