"""Filter graphs of the CIFAR-10 VGG-16 and of ResNet-50: netmod against sklearn and eigsh + KMeans, and nulls.

Both graphs are made the way a user makes them: a torch model with the
test architectures' topology (tests/cnn_models.py: VGG-16 for CIFAR-10 with
BatchNorm, 13 convs, 4224 filters; ResNet-50 with torchvision's Bottleneck
topology and parameter count, 53 convs with the 1x1 projections, 26560
filters), conv kernels Glorot-uniform (torch.nn.init.xavier_uniform_, seed 0),
traced by ``netmod.from_torch(model, example_input=x, include="conv",
kernel_norm="induced-l1")`` (REFERENCE.md 6c, 8; 32x32 and 224x224 inputs).
VGG's graph is a chain (bipartite: the B^T B path); ResNet-50's has a block
between every pair of layers a residual skip joins (not bipartite: the
general Lanczos path). In one run, for each graph:

- netmod.spectral_clustering(g, n_clusters=12, seed=0) (best and median of
  --repeats calls after a warm-up; ResNet-50: --resnet-repeats);
- sklearn SpectralClustering(affinity="precomputed", eigen_solver="arpack",
  assign_labels="kmeans") on the scipy CSR adjacency of the same graph;
  where its shift-invert factorisation runs out of memory that is reported;
- the baseline a user would write instead: scipy eigsh(which="LA") of
  D^-1/2 A D^-1/2 with k=12, the rows divided by sqrt(degree), sklearn
  KMeans(n_init=10);
- the n-cut of each partition (netmod.ncut), and for the three methods the
  median n-cut over seeds 0..4 (clustering noise is large on these graphs);
- netmod.shuffle_null(g, n_shuffles=100, shuffle="layer", n_clusters=12,
  seed=0), one timed run (all cores), before the baselines, with the
  process's RSS before it and its peak during it (Linux: VmHWM reset).

Speed is only measured here, as ratios within one run; quote the machine.

Run: python bench/bench_cnn.py [--repeats 5] [--resnet-repeats 2] [--shuffles 100] [--skip-resnet-null]
"""

import argparse
import os
import platform
import resource
import sys
import time
import warnings

import numpy as np
import scipy
import scipy.sparse as sparse
import sklearn
import torch
from scipy.sparse.linalg import eigsh
from sklearn.cluster import KMeans, SpectralClustering

import netmod

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import cnn_models  # noqa: E402
from random_init_cnn import glorot  # noqa: E402  (Glorot-uniform kernels, zero biases)

K = 12


def adjacency(g):
    """The scipy CSR adjacency of a from_torch graph, from its stored blocks."""
    sizes = g["layer_sizes"]
    if "layer_pairs" in g.attributes():
        pairs, blocks = g["layer_pairs"], g["layer_blocks"]
    else:
        blocks = g["layer_weights"]
        pairs = [(l, l + 1) for l in range(len(blocks))]
    off = np.concatenate([[0], np.cumsum(sizes)])
    rows, cols, vals = [], [], []
    for (s, d), b in zip(pairs, blocks):
        i, j = np.nonzero(b)
        v = np.abs(b[i, j])
        rows += [i + off[s], j + off[d]]
        cols += [j + off[d], i + off[s]]
        vals += [v, v]
    n = int(off[-1])
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def timed(fn, repeats, warm=True):
    if warm:
        fn()
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times)), out


def sklearn_arpack(A, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SpectralClustering(n_clusters=K, affinity="precomputed", eigen_solver="arpack",
                                  assign_labels="kmeans", random_state=seed).fit_predict(A)


def eigsh_kmeans(A, seed=0):
    d = np.asarray(A.sum(axis=1)).ravel()
    s = sparse.diags(1.0 / np.sqrt(d))
    _, vecs = eigsh(s @ A @ s, k=K, which="LA", tol=1e-8)
    return KMeans(K, n_init=10, random_state=seed).fit_predict(vecs / np.sqrt(d)[:, None])


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def reset_peak_rss():
    """Linux: start the peak-RSS count (VmHWM) afresh, so a step's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_gib(field="VmRSS"):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def bench_graph(name, g, repeats, shuffles, null):
    t = time.perf_counter()
    A = adjacency(g)
    print(f"\n## {name}: {g.vcount()} nodes, {g.ecount()} edges, {len(g['layer_sizes'])} layers "
          f"(CSR adjacency built in {time.perf_counter() - t:.1f} s)")
    rows = []
    nb, nm, p = timed(lambda: netmod.spectral_clustering(g, n_clusters=K, seed=0), repeats)
    rows.append(("netmod.spectral_clustering", nb, nm, p.ncut, [netmod.ncut(g, n_clusters=K, seed=s)
                                                                for s in range(5)]))
    print(f"netmod solver: {p.info['solver']} on the {p.info['operator']} operator, {p.info['n_matvec']} "
          f"operator applications, residual {p.info['max_residual']:.1e}")
    run_null(g, shuffles, null)
    try:
        sb, sm, labels = timed(lambda: sklearn_arpack(A), repeats if A.shape[0] < 10000 else 1,
                               warm=A.shape[0] < 10000)
        rows.append(("sklearn SpectralClustering arpack", sb, sm, netmod.ncut(g, labels),
                     [netmod.ncut(g, sklearn_arpack(A, s)) for s in range(5)] if A.shape[0] < 10000 else None))
    except MemoryError:
        sb = None
        print("sklearn SpectralClustering arpack: MemoryError (its shift-invert mode factorises the "
              f"{A.shape[0]}-node Laplacian with {A.nnz} non-zeros by SuperLU, which does not fit)")
    eb, em, labels = timed(lambda: eigsh_kmeans(A), max(1, min(repeats, 2)), warm=A.shape[0] < 10000)
    rows.append(("scipy eigsh + sklearn KMeans", eb, em, netmod.ncut(g, labels),
                 [netmod.ncut(g, eigsh_kmeans(A, s)) for s in range(5)]))
    print(f"\n{'method':<36} {'best [s]':>9} {'median [s]':>11} {'n-cut seed 0':>13} {'median n-cut 0..4':>18}")
    for label, b, m, nc, seeds in rows:
        med = f"{np.median(seeds):.4f}" if seeds else "-"
        print(f"{label:<36} {b:>9.3f} {m:>11.3f} {nc:>13.4f} {med:>18}")
    for label, _, _, _, seeds in rows:
        if seeds:
            print(f"  {label} n-cuts, seeds 0..4: {', '.join(f'{v:.4f}' for v in seeds)}")
    if sb is not None:
        print(f"sklearn arpack / netmod = {sb / nb:.1f}x")
    print(f"eigsh + KMeans / netmod = {eb / nb:.1f}x")


def run_null(g, shuffles, null):
    if null:
        before = rss_gib()
        reset = reset_peak_rss()
        t = time.perf_counter()
        out = netmod.shuffle_null(g, n_shuffles=shuffles, shuffle="layer", n_clusters=K, seed=0, progress=False)
        took = time.perf_counter() - t
        peak = f"peak RSS during it {rss_gib('VmHWM'):.2f} GiB" if reset else f"peak RSS {peak_rss_gib():.2f} GiB"
        print(f"shuffle_null, {shuffles} layer shuffles on {os.cpu_count()} cores (observed included): "
              f"{took:.1f} s ({took / shuffles:.2f} s per shuffle); RSS before {before:.2f} GiB, {peak}")
        print(f"observed {out.observed:.4f}, null {out.mean:.4f} +- {out.std:.4f}, z = {out.zscore:+.2f}, "
              f"percentile {out.percentile:.3f}")


def vgg_graph():
    """The VGG-16 (CIFAR-10) filter graph: Glorot kernels, seed 0, include="conv", induced-l1."""
    return netmod.from_torch(glorot(cnn_models.vgg16_cifar(), 0).eval(), example_input=torch.zeros(1, 3, 32, 32),
                             include="conv", kernel_norm="induced-l1")


def resnet50_graph():
    """The ResNet-50 filter graph (224x224 input), made as vgg_graph's."""
    return netmod.from_torch(glorot(cnn_models.resnet50(), 0).eval(), example_input=torch.zeros(1, 3, 224, 224),
                             include="conv", kernel_norm="induced-l1")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resnet-repeats", type=int, default=2)
    parser.add_argument("--shuffles", type=int, default=100)
    parser.add_argument("--skip-resnet-null", action="store_true")
    args = parser.parse_args(argv)
    print(f"netmod {netmod.__version__}, torch {torch.__version__}, numpy {np.__version__}, scipy "
          f"{scipy.__version__}, scikit-learn {sklearn.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores; k = {K}")

    t = time.perf_counter()
    vgg = vgg_graph()
    print(f"VGG-16 graph from_torch: {time.perf_counter() - t:.1f} s")
    bench_graph("VGG-16 CIFAR-10", vgg, args.repeats, args.shuffles, True)
    del vgg

    t = time.perf_counter()
    res = resnet50_graph()
    print(f"\nResNet-50 graph from_torch: {time.perf_counter() - t:.1f} s; peak RSS so far {peak_rss_gib():.2f} GiB")
    bench_graph("ResNet-50", res, args.resnet_repeats, args.shuffles, not args.skip_resnet_null)


if __name__ == "__main__":
    main()
