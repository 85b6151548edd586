"""Time netmod.spectral_clustering against sklearn and scipy eigsh + KMeans.

Builds the two 1818-node MLP graphs of issue 2 (784-256-256-256-256-10, graph
weights |N(0, 1)|: dense, and 90% per-layer magnitude pruned) with
netmod.from_layers and, in one run, times on each:

- netmod.spectral_clustering(g, n_clusters=12, seed=0) on the igraph graph;
- sklearn SpectralClustering(affinity="precomputed", eigen_solver="arpack",
  assign_labels="kmeans", n_clusters=12) on the scipy adjacency;
- scipy.sparse.linalg.eigsh(D^-1/2 A D^-1/2, k=12, which="LA", tol=1e-8) plus
  sklearn KMeans(n_init=10) on the Shi-Malik embedding.

Zero-degree nodes are removed before the two baselines. Every method gets one
warm-up call and several timed repeats; the ratios use the best time (the least
disturbed by other load on the machine), the median is printed next to it. The
n-cut of every partition is computed by the same scipy routine here.

Run: python bench/bench_spectral.py [--repeats N]
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np
import scipy
import scipy.sparse
import scipy.sparse.linalg
import sklearn
from sklearn.cluster import KMeans, SpectralClustering

import netmod

LAYER_SIZES = (784, 256, 256, 256, 256, 10)
N_CLUSTERS = 12
TARGETS = {"dense": 10.0, "pruned": 20.0}


def mlp_weights(seed, pruned):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(a, b)) for a, b in zip(LAYER_SIZES[:-1], LAYER_SIZES[1:])]
    if not pruned:
        return weights
    result = []
    for w in weights:
        flat = np.abs(w).ravel()
        n_keep = int(round(0.1 * flat.size))
        keep = np.argpartition(flat, flat.size - n_keep)[flat.size - n_keep:]
        mask = np.zeros(flat.size, dtype=bool)
        mask[keep] = True
        result.append(np.where(mask.reshape(w.shape), w, 0.0))
    return result


def adjacency(weights):
    """Symmetric CSR adjacency |W| of a layered net, layer 0 first."""
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    blocks = [[None] * len(sizes) for _ in sizes]
    for l, w in enumerate(weights):
        blocks[l][l + 1] = scipy.sparse.csr_matrix(np.abs(w))
        blocks[l + 1][l] = scipy.sparse.csr_matrix(np.abs(w).T)
    for l, size in enumerate(sizes):
        if blocks[l][l] is None:
            blocks[l][l] = scipy.sparse.csr_matrix((size, size))
    A = scipy.sparse.bmat(blocks, format="csr")
    A.eliminate_zeros()
    return A


def ncut(A, labels):
    """sum_c cut(C_c) / vol(C_c) over clusters, label -1 excluded."""
    degree = np.asarray(A.sum(axis=1)).ravel()
    live = labels >= 0
    clusters, index = np.unique(labels[live], return_inverse=True)
    H = scipy.sparse.csr_matrix((np.ones(index.size), (np.flatnonzero(live), index)),
                                shape=(labels.size, clusters.size))
    vol = H.T @ degree
    internal = (H.T @ A @ H).diagonal()
    nonzero = vol > 0
    return float(np.sum((vol[nonzero] - internal[nonzero]) / vol[nonzero]))


def lift(labels, kept):
    full = np.full(kept.size, -1, dtype=np.int64)
    full[kept] = labels
    return full


def run_netmod(graph):
    return np.asarray(netmod.spectral_clustering(graph, n_clusters=N_CLUSTERS, seed=0).labels)


def run_sklearn(A, kept):
    model = SpectralClustering(n_clusters=N_CLUSTERS, affinity="precomputed",
                               eigen_solver="arpack", assign_labels="kmeans", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        labels = model.fit_predict(A[kept][:, kept])
    return lift(labels, kept)


def run_eigsh_kmeans(A, kept):
    Ak = A[kept][:, kept]
    degree = np.asarray(Ak.sum(axis=1)).ravel()
    inv_sqrt = scipy.sparse.diags(1.0 / np.sqrt(degree))
    N = (inv_sqrt @ Ak @ inv_sqrt).tocsr()
    v0 = np.random.default_rng(0).uniform(-1.0, 1.0, size=N.shape[0])
    _, vectors = scipy.sparse.linalg.eigsh(N, k=N_CLUSTERS, which="LA", tol=1e-8, v0=v0)
    embedding = vectors / np.sqrt(degree)[:, None]
    labels = KMeans(n_clusters=N_CLUSTERS, n_init=10, random_state=0).fit_predict(embedding)
    return lift(labels, kept)


def timed(fn, repeats):
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times)), float(np.median(times)), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per method after one warm-up call")
    args = parser.parse_args()

    print(f"netmod {getattr(netmod, '__version__', '?')}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"k = {N_CLUSTERS}; best and median of {args.repeats} repeats after a warm-up call; "
          f"'x netmod' = best time / netmod's best time\n")
    header = (f"{'graph':<7} {'edges':>7} {'method':<36} {'best [ms]':>10} {'median [ms]':>12} "
              f"{'n-cut':>8} {'x netmod':>9}")
    print(header)
    print("-" * len(header))
    summary = []
    for name, seed, pruned in (("dense", 2020, False), ("pruned", 2021, True)):
        weights = mlp_weights(seed, pruned)
        graph = netmod.from_layers(weights)
        A = adjacency(weights)
        kept = np.asarray(A.sum(axis=1)).ravel() > 0
        rows = [
            ("netmod.spectral_clustering (igraph)", lambda graph=graph: run_netmod(graph)),
            ("sklearn SpectralClustering arpack", lambda A=A, kept=kept: run_sklearn(A, kept)),
            ("scipy eigsh LA + sklearn KMeans", lambda A=A, kept=kept: run_eigsh_kmeans(A, kept)),
        ]
        results = [(label, *timed(fn, args.repeats)) for label, fn in rows]
        base = results[0][1]
        for label, best, median, labels in results:
            print(f"{name:<7} {A.nnz // 2:>7} {label:<36} {1e3 * best:>10.1f} "
                  f"{1e3 * median:>12.1f} {ncut(A, labels):>8.4f} {best / base:>8.1f}x")
        summary.append((name, results[1][1] / base, results[2][1] / base))
    print()
    for name, vs_sklearn, vs_eigsh in summary:
        verdict = "meets" if vs_sklearn >= TARGETS[name] else "MISSES"
        print(f"{name:<7} sklearn/netmod = {vs_sklearn:6.1f}x (target >= {TARGETS[name]:.0f}x: "
              f"{verdict}), eigsh+kmeans/netmod = {vs_eigsh:6.1f}x")


if __name__ == "__main__":
    main()
