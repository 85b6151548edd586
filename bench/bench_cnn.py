"""Filter graph of the CIFAR-10 VGG-16: netmod against sklearn, and a 100-shuffle null.

The graph is that of REFERENCE.md 6c: the 13 convolutions of VGG-16 for
CIFAR-10 (64, 64, 128, 128, 256 x3, 512 x6 filters, 4224 nodes), Glorot-uniform
3x3 kernels (`netmod.synthetic.glorot_conv_kernels`, seed 0), conv filters only,
edge weight the authors' "induced-l1" kernel norm (`netmod.kernel_norms`); at
initialisation BatchNorm scales every channel alike and leaves the graph's
n-cut unchanged. In one run it times:

- netmod.spectral_clustering(blocks, n_clusters=12, seed=0), the 12 kernel-norm
  blocks given as a list (the layered graph, no igraph object);
- sklearn SpectralClustering(affinity="precomputed", eigen_solver="arpack",
  assign_labels="kmeans", n_clusters=12) on the scipy CSR adjacency of the
  same graph, with the n-cut of its partition by netmod.ncut;
- netmod.shuffle_null(blocks, n_shuffles=100, shuffle="layer", n_clusters=12,
  seed=0): the block entries permuted within each block, each shuffled net
  re-clustered.

Best and median of --repeats timed calls after one warm-up (the null: one
warm-up and --null-repeats timed calls). Speed is only measured here, as
ratios within one run; quote the machine with any numbers.

Run: python bench/bench_cnn.py [--repeats N] [--null-repeats N]
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np
import scipy
import scipy.sparse
import sklearn
from sklearn.cluster import SpectralClustering

import netmod
from netmod.paper import UNTRAINED_CNN
from netmod.synthetic import glorot_conv_kernels

N_CLUSTERS = 12


def vgg_blocks(seed=0):
    ref = UNTRAINED_CNN["VGG-16 CIFAR-10"]
    kernels = glorot_conv_kernels(ref["channels"], in_channels=ref["in_channels"], seed=seed)
    return [netmod.kernel_norms(k, ref["norm"]) for k in kernels[1:]]


def adjacency(blocks):
    sizes = [blocks[0].shape[0]] + [b.shape[1] for b in blocks]
    grid = [[None] * len(sizes) for _ in sizes]
    for l, b in enumerate(blocks):
        grid[l][l + 1] = scipy.sparse.csr_matrix(b)
        grid[l + 1][l] = scipy.sparse.csr_matrix(b.T)
    for l, n in enumerate(sizes):
        grid[l][l] = scipy.sparse.csr_matrix((n, n))
    return scipy.sparse.bmat(grid, format="csr")


def timed(fn, repeats):
    fn()
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times)), out


def run_sklearn(A):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SpectralClustering(n_clusters=N_CLUSTERS, affinity="precomputed", eigen_solver="arpack",
                                   assign_labels="kmeans", random_state=0)
        return model.fit_predict(A)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--null-repeats", type=int, default=2)
    args = parser.parse_args(argv)

    blocks = vgg_blocks()
    A = adjacency(blocks)
    print(f"netmod {netmod.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"scikit-learn {sklearn.__version__}, python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"VGG-16 CIFAR-10 filter graph: {A.shape[0]} nodes, {A.nnz // 2} edges; k = {N_CLUSTERS}; "
          f"best and median of {args.repeats} calls after a warm-up\n")

    nb, nm, p = timed(lambda: netmod.spectral_clustering(blocks, n_clusters=N_CLUSTERS, seed=0), args.repeats)
    sb, sm, labels = timed(lambda: run_sklearn(A), args.repeats)
    sk_ncut = netmod.ncut(blocks, labels)
    print(f"{'method':<40} {'best [ms]':>10} {'median [ms]':>12} {'n-cut':>9}")
    print(f"{'netmod.spectral_clustering (blocks)':<40} {1e3 * nb:>10.1f} {1e3 * nm:>12.1f} {p.ncut:>9.4f}")
    print(f"{'sklearn SpectralClustering arpack':<40} {1e3 * sb:>10.1f} {1e3 * sm:>12.1f} {sk_ncut:>9.4f}")
    print(f"sklearn/netmod = {sb / nb:.1f}x; n-cut netmod/sklearn = {p.ncut / sk_ncut:.4f}\n")

    def null_of_vgg():
        return netmod.shuffle_null(blocks, n_shuffles=100, shuffle="layer", n_clusters=N_CLUSTERS, seed=0,
                                   progress=False)

    b, m, null = timed(null_of_vgg, args.null_repeats)
    print(f"shuffle_null, 100 layer shuffles (all cores, observed included): best {b:.2f} s, median {m:.2f} s "
          f"({100 / b:.1f} samples/s)")
    print(f"observed {null.observed:.4f}, null {null.mean:.4f} +- {null.std:.4f}, z = {null.zscore:+.2f}, "
          f"percentile {null.percentile:.3f}")


if __name__ == "__main__":
    main()
