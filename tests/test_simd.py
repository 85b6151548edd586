"""The two builds of the native kernel, and the kernels added for speed.

netmod ships the kernel as ``_core`` (portable flags) and, on x86-64, as
``_core_avx2`` (AVX2 + FMA), and imports the fast one when the CPU has it.
Checked here: the choice and its record in ``versions()``; both builds against
scipy's dense eigensolver and the numpy n-cut on graphs that take the new
vectorised paths (dense layered blocks times 1, 2 and 3 vectors, the k-means
lane kernel); the two builds against each other; and that chunking a null run
differently (the time-sized chunks of ``shuffle_null``) changes no sample.
"""

import itertools
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
from sklearn.metrics import adjusted_rand_score

import netmod
import netmod.nulls
from netmod import _native
from netmod.synthetic import glorot_weights, prune_by_magnitude

BUILDS = _native.builds()
BUILD_IDS = [name for name, _ in BUILDS]


def _dense_layered(seed, sizes=(300, 200, 160, 40)):
    """Dense signed layers: n = 700 > 400, so the solver takes block size 2."""
    return [np.ascontiguousarray(w) for w in glorot_weights(list(sizes), seed=seed)]


def _normalized_eigenvalues(weights, k, layered_adjacency):
    A = layered_adjacency(weights)
    d = A.sum(axis=1)
    s = 1.0 / np.sqrt(d)
    L = np.eye(len(d)) - s[:, None] * A * s[None, :]
    return scipy.linalg.eigh(L, eigvals_only=True, subset_by_index=[0, k - 1])


def test_choice_is_recorded():
    core = _native.core
    assert netmod.versions()["simd"] == core.simd
    assert core is _native.load()  # what $NETMOD_SIMD (default auto) selects
    auto = _native.load("auto")
    if _native.baseline.cpu_has_avx2_fma() and len(BUILDS) == 2:
        assert auto.simd == "avx2+fma"
    else:
        assert auto is _native.baseline


def test_fast_build_is_shipped_where_it_runs():
    """CMake builds _core_avx2 on every x86-64 target; an AVX2 CPU must get it."""
    if platform.machine().lower() in ("x86_64", "amd64") and _native.baseline.cpu_has_avx2_fma():
        assert [name for name, _ in BUILDS] == ["baseline", "avx2"]
        assert _native.load("avx2").simd == "avx2+fma"
    else:
        with pytest.raises(ImportError, match="NETMOD_SIMD=avx2"):
            _native.load("avx2")


def test_bad_choice_is_refused():
    with pytest.raises(ValueError, match="NETMOD_SIMD"):
        _native.load("fastest")


def test_environment_forces_the_portable_build():
    code = "import netmod; print(netmod.versions()['simd'])"
    env = dict(os.environ, NETMOD_SIMD="baseline")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _native.baseline.simd
    env["NETMOD_SIMD"] = "nonsense"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "NETMOD_SIMD" in bad.stderr


@pytest.mark.parametrize("block_size", [1, 2, 3])
@pytest.mark.parametrize(("name", "core"), BUILDS, ids=BUILD_IDS)
def test_dense_blocks_times_few_vectors_match_scipy(name, core, block_size, layered_adjacency):
    """Block sizes 1-3 run the row-vectorised dense kernel on every product."""
    weights = _dense_layered(seed=block_size)
    want = _normalized_eigenvalues(weights, 8, layered_adjacency)
    r = core.spectral_layers(weights, n_clusters=8, cluster=False, tol=1e-10, seed=0, block_size=block_size)
    np.testing.assert_allclose(r["eigenvalues"], want, rtol=0, atol=1e-9)
    assert r["max_residual"] <= 2e-10


@pytest.mark.parametrize(("name", "core"), BUILDS, ids=BUILD_IDS)
def test_both_builds_recover_planted_modules(name, core, planted_layered_weights, layered_adjacency,
                                             ncut_reference):
    weights, truth = planted_layered_weights(0)
    r = core.spectral_layers([np.ascontiguousarray(w) for w in weights], n_clusters=4, seed=0)
    assert adjusted_rand_score(truth, r["labels"]) >= 0.95
    A = layered_adjacency(weights)
    assert r["ncut"] == pytest.approx(ncut_reference(A, r["labels"]), rel=1e-12)


@pytest.mark.skipif(len(BUILDS) < 2, reason="this CPU runs only the portable build")
def test_builds_agree():
    """Same eigenvalues to round-off, same partitions, same null samples."""
    (_, base), (_, fast) = BUILDS
    sizes = [784, 256, 256, 256, 256, 10]
    dense = [np.ascontiguousarray(w) for w in glorot_weights(sizes, seed=3)]
    pruned = [np.ascontiguousarray(w) for w in prune_by_magnitude(glorot_weights(sizes, seed=4), 0.9)]
    for weights in (dense, pruned):
        a = base.spectral_layers(weights, n_clusters=12, seed=1)
        b = fast.spectral_layers(weights, n_clusters=12, seed=1)
        np.testing.assert_allclose(a["eigenvalues"], b["eigenvalues"], rtol=0, atol=1e-10)
        assert adjusted_rand_score(a["labels"], b["labels"]) == 1.0
        assert a["ncut"] == pytest.approx(b["ncut"], rel=1e-10)
        kw = {"method": "layer", "seed": 5, "start": 0, "count": 4, "n_clusters": 12, "n_threads": 2}
        np.testing.assert_allclose(base.null_samples(weights, **kw), fast.null_samples(weights, **kw),
                                   rtol=1e-10)


@pytest.mark.parametrize("seconds", [1e-9, 1e9])
def test_chunking_changes_no_sample(monkeypatch, seconds):
    """Chunks of one replicate per thread and one chunk for all: same null."""
    weights = prune_by_magnitude(glorot_weights([40, 30, 30, 10], seed=8), 0.6)
    ref = netmod.shuffle_null(weights, n_shuffles=13, n_clusters=4, seed=2, n_threads=2, progress=False)
    monkeypatch.setattr(netmod.nulls, "CHUNK_SECONDS", seconds)
    got = netmod.shuffle_null(weights, n_shuffles=13, n_clusters=4, seed=2, n_threads=2, progress=False)
    assert got.observed == ref.observed
    np.testing.assert_array_equal(got.samples, ref.samples)
    # The observed value is the clustering of the unshuffled network.
    assert got.observed == netmod.spectral_clustering(netmod.from_layers(weights), n_clusters=4, seed=2).ncut


@pytest.mark.parametrize(("name", "core"), BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("method", ["layer", "nonzero"])
def test_sparse_layer_index_changes_no_sample(name, core, method):
    """Null replicates read layers of at most 50% non-zeros through a sparse
    index (degrees, edges, operator, n-cut); spectral clustering of the same
    shuffled weights reads them dense. Layers on both sides of the cut-off,
    and one that `layer` shuffles leave with isolated units."""
    rng = np.random.default_rng(11)
    sizes = [60, 45, 40, 35, 12]
    densities = [0.9, 0.3, 0.55, 0.04]
    weights = []
    for (n_in, n_out), density in zip(itertools.pairwise(sizes), densities, strict=True):
        w = rng.normal(size=(n_in, n_out))
        w[rng.uniform(size=w.shape) > density] = 0.0
        weights.append(np.ascontiguousarray(w))
    seed, count, k = 7, 8, 4
    samples = core.null_samples(weights, method=method, seed=seed, start=0, count=count,
                                n_clusters=k, observed=True)
    compact = core.compact_layers(weights)
    assert samples[0] == core.spectral_layers(compact, n_clusters=k, seed=seed)["ncut"]
    for i in range(count):
        shuffled = core.shuffled_layers(weights, method=method, seed=seed, index=i)
        expected = core.spectral_layers(shuffled, n_clusters=k, seed=netmod.replicate_seed(seed, i))
        assert samples[i + 1] == expected["ncut"], i
