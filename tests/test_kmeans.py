"""The native k-means (the last step of spectral clustering), run directly.

Checked here, in both builds of the kernel:
- the float screen of the assignments changes nothing: labels, inertia and
  iteration count are identical with the screen on and off, on data made to
  defeat it (tied rows, duplicated centres, mixed magnitudes down to the
  float subnormal range, scales float cannot hold, k and d above the
  compile-time kernels, row counts that leave partial panels);
- the result is a k-means fixed point by an independent numpy computation:
  every row's nearest cluster mean is its own cluster, and the inertia is the
  sum of squared distances to those means;
- on well-separated blobs it finds sklearn's KMeans partition and inertia.
"""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from netmod import _native

BUILDS = _native.builds()
BUILD_IDS = [name for name, _ in BUILDS]


def blobs(n, d, k, seed, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3.0
    labels = rng.integers(0, k, size=n)
    return centres[labels] + spread * rng.normal(size=(n, d))


def embedding_like(n, k, seed):
    """Rows like a spectral embedding: unit-norm columns divided by sqrt(degree)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, k)))
    return q / np.sqrt(rng.uniform(0.5, 30.0, size=n))[:, None]


def tied_rows(seed):
    """Few distinct rows, many copies: exact distance ties everywhere."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(7, 5))
    return base[rng.integers(0, 7, size=301)]


def near_ties(seed):
    """A uniform slab, symmetric about a plane through m (k=2 splits it
    there), plus mirror pairs of rows 1e-9 off that plane: the two means stay
    mirror images up to round-off, so each such row is nearer its own side's
    mean by a relative margin of ~1e-10, far below single precision."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=6)
    u = rng.normal(size=6)
    u /= np.linalg.norm(u)

    def mirror(x):
        return x - 2.0 * ((x - m) @ u)[:, None] * u

    def flat(count):
        perp = 0.05 * rng.normal(size=(count, 6))
        return perp - (perp @ u)[:, None] * u

    slab = m + rng.uniform(0.3, 1.0, size=(300, 1)) * u + flat(300)
    near = m + 1e-9 * rng.uniform(0.5, 1.0, size=(30, 1)) * u + flat(30)
    return np.vstack([slab, mirror(slab), near, mirror(near)])


def mixed_scales(seed):
    """Rows from 1e-42 to 1: the small ones fall into float's subnormal range."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(333, 4))
    return x * np.logspace(-42, 0, 333)[:, None]


CASES = {
    "blobs-12x12": lambda s: (blobs(1818, 12, 12, s), 12),
    "embedding-12": lambda s: (embedding_like(1299, 12, s), 12),
    "embedding-4": lambda s: (embedding_like(257, 4, s), 4),
    "tied-rows": lambda s: (tied_rows(s), 9),
    "near-ties": lambda s: (near_ties(s), 2),
    "mixed-scales": lambda s: (mixed_scales(s), 5),
    "huge": lambda s: (blobs(203, 3, 4, s) * 1e295, 4),
    "tiny": lambda s: (blobs(203, 3, 4, s) * 1e-295, 4),
    "scale-1e-200": lambda s: (blobs(203, 12, 12, s) * 1e-200, 12),
    "k20-d20": lambda s: (blobs(509, 20, 20, s), 20),
    "d1": lambda s: (blobs(97, 1, 3, s), 3),
    "k1": lambda s: (blobs(50, 3, 2, s), 1),
    "n-equals-k": lambda s: (blobs(6, 2, 3, s), 6),
}


def near_bisectors(n, d, k, seed, offset=1e-9, scale=1.0):
    """Centres, and rows just off the bisector of a random pair of them
    (relative offset `offset` along the pair's difference), plus exact copies
    of centres and of other rows: the assignments single precision cannot
    decide."""
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(k, d))
    a, b = rng.integers(0, k, size=(2, n))
    b = np.where(a == b, (b + 1) % k, b)
    t = offset * rng.choice([-1.0, 1.0], size=(n, 1)) * rng.uniform(0.5, 1.0, size=(n, 1))
    X = (C[a] + C[b]) / 2 + t * (C[b] - C[a])
    X[::7] = C[rng.integers(0, k, size=len(X[::7]))]
    X[1::11] = X[::11][: len(X[1::11])]
    X = np.vstack([X, C])  # centres within the rows' range, as in k-means
    return X * scale, C * scale


ASSIGN_CASES = {
    "k12-d12": {"n": 1000, "d": 12, "k": 12},
    "k3-d2": {"n": 301, "d": 2, "k": 3},
    "k20-d7": {"n": 257, "d": 7, "k": 20},
    "k2-d1": {"n": 33, "d": 1, "k": 2},
    "few-rows": {"n": 5, "d": 12, "k": 12},
    "offset-1e-6": {"n": 500, "d": 12, "k": 12, "offset": 1e-6},
    "offset-1e-4": {"n": 500, "d": 12, "k": 12, "offset": 1e-4},
    "scale-1e-30": {"n": 300, "d": 12, "k": 12, "scale": 1e-30},
    "scale-1e30": {"n": 300, "d": 12, "k": 12, "scale": 1e30},
    "scale-1e-300": {"n": 300, "d": 5, "k": 4, "scale": 1e-300},
    "scale-1e-200": {"n": 300, "d": 12, "k": 12, "scale": 1e-200},
    "scale-1e200": {"n": 300, "d": 12, "k": 12, "scale": 1e200},
}


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
@pytest.mark.parametrize("case", sorted(ASSIGN_CASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_screened_assignment_is_the_double_assignment(build, case, seed):
    X, C = near_bisectors(seed=seed, **ASSIGN_CASES[case])
    screened, _ = build.assign_rows(X, C, screen=True)
    exact, none = build.assign_rows(X, C, screen=False)
    np.testing.assert_array_equal(screened, exact)
    assert none == 0
    # The double kernel itself against numpy (at unit scale: the kernel
    # rescales by a power of two, numpy's squares of 1e-200 would underflow),
    # wherever numpy's own round-off cannot decide the other way.
    e = np.frexp(np.abs(X).max())[1]
    X, C = np.ldexp(X, -e), np.ldexp(C, -e)
    s = (C**2).sum(axis=1)[None, :] - 2.0 * X @ C.T
    order = np.sort(s, axis=1)
    clear = order[:, 1] - order[:, 0] > 1e-12 * ((X**2).sum(axis=1) + (C**2).sum(axis=1).max())
    np.testing.assert_array_equal(exact[clear], s.argmin(axis=1)[clear])
    # Exact ties (rows equal to duplicated distances) go to the lowest index.
    ties = order[:, 1] == order[:, 0]
    np.testing.assert_array_equal(exact[ties], s.argmin(axis=1)[ties])


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
@pytest.mark.parametrize("e", [-900, -500, -100, 7, 100, 500])
def test_power_of_two_scale_changes_nothing(build, e):
    """k-means and the assignment run at unit scale whatever the data's
    magnitude: rescaling by 2^e (exact) gives the same labels and the inertia
    times 4^e (squared norms of 1e-300 or 1e300 data are not representable,
    so without the rescaling they collapsed to one cluster)."""
    X = embedding_like(700, 12, 3)
    base = build.kmeans_rows(X, n_clusters=12, n_init=3, seed=1)
    run = build.kmeans_rows(np.ldexp(X, e), n_clusters=12, n_init=3, seed=1)
    np.testing.assert_array_equal(run["labels"], base["labels"])
    assert run["inertia"] == np.ldexp(base["inertia"], 2 * e)
    assert run["n_iter"] == base["n_iter"]
    Xa, C = near_bisectors(400, 12, 12, 4, offset=1e-3)
    labels, _ = build.assign_rows(Xa, C)
    scaled, _ = build.assign_rows(np.ldexp(Xa, e), np.ldexp(C, e))
    np.testing.assert_array_equal(scaled, labels)


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
def test_screen_redoes_only_the_undecidable_rows(build):
    X, C = near_bisectors(2000, 12, 12, 0, offset=1e-9)
    _, redone = build.assign_rows(X, C)
    assert redone > 0.5 * 2000  # nearly every row is within 1e-9 of a tie
    X, C = near_bisectors(2000, 12, 12, 0, offset=0.2)
    _, redone = build.assign_rows(X, C)
    assert redone < 0.2 * 2000  # rows off the bisectors are screened (copies tie)


def test_duplicated_centres_tie_to_the_lowest_index():
    rng = np.random.default_rng(0)
    C = rng.normal(size=(4, 3))
    C = np.vstack([C, C[[2, 0]]])  # centres 4 and 5 copy 2 and 0
    X = np.vstack([rng.normal(size=(200, 3)) * 0.5, C])
    for build in (b for _, b in BUILDS):
        labels, _ = build.assign_rows(X, C)
        assert labels.max() <= 3


def test_assign_rows_rejects_centres_outside_the_rows():
    with pytest.raises(ValueError, match="within"):
        _native.core.assign_rows(np.ones((3, 2)), np.full((2, 2), 2.0))


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_float_screen_changes_nothing(build, case, seed):
    X, k = CASES[case](seed)
    X = np.ascontiguousarray(X, dtype=np.float64)
    on = build.kmeans_rows(X, n_clusters=k, n_init=4, seed=seed, screen=True)
    off = build.kmeans_rows(X, n_clusters=k, n_init=4, seed=seed, screen=False)
    np.testing.assert_array_equal(on["labels"], off["labels"])
    assert on["inertia"] == off["inertia"]
    assert on["n_iter"] == off["n_iter"]
    assert off["n_redone"] == 0


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
def test_float_screen_hands_ties_to_the_double_kernel(build):
    # The redo path is exercised, not assumed: exact ties cannot be screened.
    X = tied_rows(3)
    run = build.kmeans_rows(X, n_clusters=9, n_init=1, seed=0)
    assert run["n_redone"] > 0
    # ...while well-separated data is screened almost entirely.
    clear = build.kmeans_rows(blobs(2000, 8, 5, 0, spread=0.1), n_clusters=5, n_init=1, seed=0)
    assert clear["n_redone"] < 2000 * 0.01 * clear["n_iter"]


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
@pytest.mark.parametrize("case", ["blobs-12x12", "embedding-12", "mixed-scales", "k20-d20"])
def test_result_is_a_kmeans_fixed_point(build, case):
    X, k = CASES[case](5)
    run = build.kmeans_rows(X, n_clusters=k, n_init=3, seed=2)
    assert run["n_iter"] < 300  # converged
    labels = run["labels"]
    assert labels.min() >= 0 and labels.max() < k
    means = np.array([X[labels == c].mean(axis=0) for c in range(k)])
    d2 = ((X[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
    own = d2[np.arange(len(X)), labels]
    # Every row sits in (one of) its nearest means' clusters, up to round-off.
    scale = (X**2).sum(axis=1) + (means**2).sum(axis=1).max()
    assert np.all(own <= d2.min(axis=1) + 1e-12 * scale)
    assert run["inertia"] == pytest.approx(own.sum(), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_separated_blobs(build, seed):
    X = blobs(1500, 10, 8, seed, spread=0.2)
    run = build.kmeans_rows(X, n_clusters=8, n_init=10, seed=seed)
    ref = KMeans(n_clusters=8, n_init=10, random_state=seed).fit(X)
    assert adjusted_rand_score(run["labels"], ref.labels_) == 1.0
    assert run["inertia"] == pytest.approx(ref.inertia_, rel=1e-9)


@pytest.mark.parametrize("build", [b for _, b in BUILDS], ids=BUILD_IDS)
def test_thread_count_does_not_change_the_result(build):
    X = embedding_like(900, 12, 7)
    runs = [build.kmeans_rows(X, n_clusters=12, n_init=6, seed=4, n_threads=t) for t in (1, 2, 3)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run["labels"], runs[0]["labels"])
        assert run["inertia"] == runs[0]["inertia"]


@pytest.mark.parametrize("bad,match", [
    (np.array([[0.0, np.nan]] * 5), "NaN or infinite"),
    (np.array([[0.0, np.inf]] * 5), "NaN or infinite"),
    (np.zeros(5), "2-D"),
    (np.zeros((5, 0)), "at least one column"),
])
def test_bad_input_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        _native.core.kmeans_rows(bad, n_clusters=2)


@pytest.mark.parametrize("kw,match", [
    ({"n_clusters": 0}, "n_clusters"), ({"n_clusters": 6}, "n_clusters"),
    ({"n_clusters": 2, "n_init": 0}, "n_init"), ({"n_clusters": 2, "max_iter": 0}, "max_iter"),
])
def test_bad_parameters_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        _native.core.kmeans_rows(np.zeros((5, 2)), **kw)
