"""Choosing k: netmod.sweep (one eigensolve for max(ks) + 1 eigenvalues, k-means at every k) against separate
netmod.spectral_clustering calls at each k, and the null per k against one shuffle_null per k.

Graphs: the 784-256x4-10 MLP with Glorot-uniform weights (seed 0), the same MLP magnitude-pruned to 90% per
layer, and the VGG-16 (CIFAR-10) conv-filter graph of bench_cnn.vgg_graph(). For each: the wall time of
``sweep(g, ks=range(2, 21), seed=0)`` and of the 19 calls ``spectral_clustering(g, n_clusters=k, seed=0)``
(best of --repeats, same threads), their ratio, and at how many k the two partitions are identical (labels
equal) and the largest n-cut difference. Then, on the MLP, a --shuffles null at every k: one sweep with
n_shuffles against 19 shuffle_null calls (same samples, checked), and their ratio.

Speed is only measured here, as ratios within one run; quote the machine.

Run: python bench/bench_sweep.py [--repeats 3] [--shuffles 20] [--threads N]
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

import netmod
from netmod.synthetic import glorot_weights

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pruned(weights, sparsity=0.9):
    out = []
    for w in weights:
        cut = np.quantile(np.abs(w), sparsity)
        out.append(np.where(np.abs(w) > cut, w, 0.0))
    return out


def best(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shuffles", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-vgg", action="store_true")
    args = parser.parse_args(argv)
    ks = list(range(2, 21))
    print(f"# netmod {netmod.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"threads={args.threads or 'all'}")
    mlp = glorot_weights([784, 256, 256, 256, 256, 10], seed=0)
    graphs = {"MLP 784-256x4-10 (Glorot)": mlp, "MLP, 90% pruned": pruned(mlp)}
    if not args.skip_vgg:
        from bench_cnn import vgg_graph

        graphs["VGG-16 CIFAR conv filters"] = vgg_graph()
    print("| graph | sweep k=2..20 (s) | 19 spectral_clustering calls (s) | ratio | identical partitions | "
          "max n-cut difference |")
    print("|---|---|---|---|---|---|")
    for name, g in graphs.items():
        netmod.sweep(g, ks=[2, 3], n_threads=args.threads)  # warm-up
        t_sweep, s = best(lambda g=g: netmod.sweep(g, ks=ks, seed=0, n_threads=args.threads), args.repeats)
        t_sep, parts = best(lambda g=g: [netmod.spectral_clustering(g, n_clusters=k, seed=0, n_threads=args.threads)
                                         for k in ks], args.repeats)
        same = sum(np.array_equal(a, p.labels) for a, p in zip(s.labels, parts))
        diff = max(abs(a - p.ncut) for a, p in zip(s.ncut, parts))
        print(f"| {name} | {t_sweep:.3f} | {t_sep:.3f} | {t_sep / t_sweep:.1f}x | {same}/{len(ks)} | {diff:.2g} |",
              flush=True)
    if args.shuffles:
        t = time.perf_counter()
        s = netmod.sweep(mlp, ks=ks, seed=0, n_shuffles=args.shuffles, n_threads=args.threads, progress=False)
        t_sweep = time.perf_counter() - t
        t = time.perf_counter()
        nulls = [netmod.shuffle_null(mlp, n_clusters=k, n_shuffles=args.shuffles, seed=0, n_threads=args.threads,
                                     progress=False) for k in ks]
        t_sep = time.perf_counter() - t
        same = all(np.array_equal(s.null_samples[:, j], n.samples) for j, n in enumerate(nulls))
        print(f"\nnull at every k (MLP, {args.shuffles} layer shuffles): sweep {t_sweep:.1f} s, 19 shuffle_null "
              f"calls {t_sep:.1f} s, ratio {t_sep / t_sweep:.1f}x; samples identical: {same}")
        print(s.to_markdown())


if __name__ == "__main__":
    main()
