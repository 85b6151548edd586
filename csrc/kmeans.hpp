// kmeans.hpp — k-means with greedy k-means++ seeding and n_init restarts.
//
// Contract: `kmeans(X, k, opts)` clusters the rows of the row-major n x d
// matrix X (finite values, 1 <= k <= n) into k clusters. Each restart r uses
// Rng(derive_seed(seed, r)): greedy k-means++ (2 + floor(ln k) candidate
// centres per step, the one lowering the potential most is kept), then Lloyd
// iterations until no label changes or the centres move less than
// rel_tol * mean per-feature variance (squared Frobenius shift), at most
// max_iter iterations. Empty clusters are re-seeded at the point farthest from
// its centre. The restart with the lowest inertia wins, ties to the lowest r,
// so the result does not depend on n_threads.
// Complexity: O(n_init * iterations * n * k * d). Thread safety: pure.
#pragma once

#include "parallel.hpp"
#include "rng.hpp"
#include "simd.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace netmod {

struct KMeansOptions {
    int n_init = 10;
    int max_iter = 300;
    double rel_tol = 1e-4;
    std::uint64_t seed = 0;
    int n_threads = 1;
};

struct KMeansResult {
    std::vector<std::int64_t> labels;
    double inertia = 0.0;
    int n_iter = 0;
};

namespace detail {

using KRowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Greedy k-means++: each new centre is the best (lowest potential) of
// `trials` candidates drawn with probability proportional to the squared
// distance to the nearest centre so far.
inline void kmeanspp(const KRowMat& X, const Eigen::VectorXd& xn, std::int64_t k, Rng& rng,
                     KRowMat& C) {
    const std::int64_t n = X.rows();
    const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
    std::vector<double> closest(n);
    std::vector<std::int64_t> cand(trials);
    Eigen::VectorXd cand_norm(trials);
    KRowMat cand_rows(trials, X.cols());
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> G(n, trials);

    const std::int64_t first = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n)));
    C.row(0) = X.row(first);
    const Eigen::VectorXd g0 = X * X.row(first).transpose();
    double pot = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        closest[i] = std::max(0.0, xn[i] - 2.0 * g0[i] + xn[first]);
        pot += closest[i];
    }
    for (std::int64_t c = 1; c < k; ++c) {
        for (int t = 0; t < trials; ++t) {
            std::int64_t idx = n - 1;
            if (pot > 0.0) {
                const double r = rng.uniform() * pot;
                double acc = 0.0;
                for (std::int64_t i = 0; i < n; ++i) {
                    acc += closest[i];
                    if (acc > r) {
                        idx = i;
                        break;
                    }
                }
            } else {
                idx = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n)));
            }
            cand[t] = idx;
            cand_rows.row(t) = X.row(idx);
            cand_norm[t] = xn[idx];
        }
        G.noalias() = X * cand_rows.transpose();
        int best = 0;
        double best_pot = std::numeric_limits<double>::infinity();
        for (int t = 0; t < trials; ++t) {
            double p = 0.0;
            for (std::int64_t i = 0; i < n; ++i)
                p += std::min(closest[i], std::max(0.0, xn[i] - 2.0 * G(i, t) + cand_norm[t]));
            if (p < best_pot) {
                best_pot = p;
                best = t;
            }
        }
        for (std::int64_t i = 0; i < n; ++i)
            closest[i] = std::min(closest[i], std::max(0.0, xn[i] - 2.0 * G(i, best) + cand_norm[best]));
        C.row(c) = X.row(cand[best]);
        pot = best_pot;
    }
}

// The rows of X regrouped for the lane kernel: kLanes consecutive rows form
// one panel, stored feature by feature (panel b, feature t, lane j at
// data[(b * d + t) * kLanes + j]); the last panel is padded with zeros.
constexpr int kLanes = simd::kWidth;
using Lanes = simd::Vec;
using LaneIdx = simd::VecIdx;

struct Panels {
    std::int64_t n = 0, d = 0, blocks = 0;
    std::vector<Lanes> data;
    explicit Panels(const KRowMat& X)
        : n(X.rows()), d(X.cols()), blocks((X.rows() + kLanes - 1) / kLanes),
          data(static_cast<std::size_t>(blocks * d)) {
        for (std::int64_t b = 0; b < blocks; ++b)
            for (std::int64_t t = 0; t < d; ++t) {
                Lanes v = {};
                for (int j = 0; j < kLanes; ++j) {
                    const std::int64_t i = b * kLanes + j;
                    v[j] = i < n ? X(i, t) : 0.0;
                }
                data[static_cast<std::size_t>(b * d + t)] = v;
            }
    }
};

// For every row: the nearest of the k centres (rows of C, squared norms cn)
// by s_c = |c|^2 - 2 x.c (ties: lowest c), its squared distance
// max(0, s + |x|^2) into dist and the label into labels (changed is set when
// one differs from before); returns the sum of the distances. Each lane sums
// x.c over the features in order, so a row's result does not depend on its
// lane or on the build's vector width. K > 0 fixes k at compile time so the
// k accumulators of a panel stay in registers.
template <int K>
double nearest_k(const Panels& P, const KRowMat& C, const Eigen::VectorXd& cn,
                 const Eigen::VectorXd& xn, std::int64_t* labels, double* dist, bool& changed) {
    const std::int64_t k = K > 0 ? K : C.rows(), d = P.d;
    std::vector<Lanes> spare(K > 0 ? 0 : static_cast<std::size_t>(k));
    Lanes fixed[K > 0 ? K : 1];
    Lanes* g = K > 0 ? fixed : spare.data();
    double inertia = 0.0;
    for (std::int64_t b = 0; b < P.blocks; ++b) {
        const Lanes* x = P.data.data() + b * d;
        for (std::int64_t c = 0; c < k; ++c) g[c] = Lanes{} ;
        for (std::int64_t t = 0; t < d; ++t) {
            const Lanes xt = x[t];
            for (std::int64_t c = 0; c < k; ++c) g[c] += xt * C(c, t);
        }
        Lanes best = cn[0] - 2.0 * g[0];
        LaneIdx arg = LaneIdx{};
        for (std::int64_t c = 1; c < k; ++c) {
            const Lanes s = cn[c] - 2.0 * g[c];
            const LaneIdx lower = s < best;
            best = lower ? s : best;
            arg = lower ? LaneIdx{} + c : arg;
        }
        for (int j = 0; j < kLanes; ++j) {
            const std::int64_t i = b * kLanes + j;
            if (i >= P.n) break;
            changed |= labels[i] != arg[j];
            labels[i] = arg[j];
            dist[i] = std::max(0.0, best[j] + xn[i]);
            inertia += dist[i];
        }
    }
    return inertia;
}

inline double nearest_centres(const Panels& P, const KRowMat& C, const Eigen::VectorXd& cn,
                              const Eigen::VectorXd& xn, std::int64_t* labels, double* dist,
                              bool& changed) {
    switch (C.rows()) {
#define NETMOD_K(v) \
    case v: return nearest_k<v>(P, C, cn, xn, labels, dist, changed);
        NETMOD_K(2) NETMOD_K(3) NETMOD_K(4) NETMOD_K(5) NETMOD_K(6) NETMOD_K(7) NETMOD_K(8)
        NETMOD_K(9) NETMOD_K(10) NETMOD_K(11) NETMOD_K(12) NETMOD_K(13) NETMOD_K(14)
        NETMOD_K(15) NETMOD_K(16)
#undef NETMOD_K
        default: return nearest_k<0>(P, C, cn, xn, labels, dist, changed);
    }
}

inline KMeansResult lloyd(const KRowMat& X, const Panels& P, const Eigen::VectorXd& xn, KRowMat& C,
                          const KMeansOptions& opts, double tol) {
    const std::int64_t n = X.rows(), d = X.cols(), k = C.rows();
    KMeansResult res;
    res.labels.assign(n, -1);
    std::vector<double> dist(n);
    std::vector<std::int64_t> count(k);
    KRowMat sums(k, d);

    // Squared distances as |x|^2 - 2 x.c + |c|^2 by the lane kernel above.
    Eigen::VectorXd cn(k);
    auto assign = [&]() {
        cn = C.rowwise().squaredNorm();
        bool changed = false;
        res.inertia = nearest_centres(P, C, cn, xn, res.labels.data(), dist.data(), changed);
        return changed;
    };

    for (int it = 0; it < opts.max_iter; ++it) {
        const bool changed = assign();
        res.n_iter = it + 1;
        if (it > 0 && !changed) break;
        sums.setZero();
        std::fill(count.begin(), count.end(), 0);
        for (std::int64_t i = 0; i < n; ++i) {
            const std::int64_t c = res.labels[i];
            double* s = sums.data() + c * d;
            const double* x = X.data() + i * d;
            for (std::int64_t t = 0; t < d; ++t) s[t] += x[t];
            ++count[c];
        }
        std::vector<char> taken(n, 0);
        double shift = 0.0;
        for (std::int64_t c = 0; c < k; ++c) {
            Eigen::RowVectorXd next(d);
            if (count[c] > 0) {
                next = sums.row(c) / static_cast<double>(count[c]);
            } else {
                std::int64_t far = -1;
                for (std::int64_t i = 0; i < n; ++i)
                    if (!taken[i] && (far < 0 || dist[i] > dist[far])) far = i;
                taken[far] = 1;
                dist[far] = 0.0;
                next = X.row(far);
            }
            shift += (next - C.row(c)).squaredNorm();
            C.row(c) = next;
        }
        if (shift <= tol) {
            assign();
            break;
        }
    }
    return res;
}

}  // namespace detail

inline KMeansResult kmeans(const detail::KRowMat& X, std::int64_t k, const KMeansOptions& opts) {
    const std::int64_t n = X.rows();
    if (k < 1 || k > n)
        throw std::invalid_argument("kmeans: n_clusters must be in [1, " + std::to_string(n) +
                                    "], got " + std::to_string(k));
    if (opts.n_init < 1) throw std::invalid_argument("kmeans: n_init must be >= 1");
    const Eigen::RowVectorXd mean = X.colwise().mean();
    const double tol = opts.rel_tol * (X.rowwise() - mean).colwise().squaredNorm().mean() /
                       static_cast<double>(n);

    const Eigen::VectorXd xn = X.rowwise().squaredNorm();
    const detail::Panels P(X);  // shared, read-only, by all restarts
    std::vector<KMeansResult> runs(opts.n_init);
    parallel_for(opts.n_init, opts.n_threads, [&](std::int64_t r) {
        Rng rng(derive_seed(opts.seed, static_cast<std::uint64_t>(r)));
        detail::KRowMat C(k, X.cols());
        detail::kmeanspp(X, xn, k, rng, C);
        runs[r] = detail::lloyd(X, P, xn, C, opts, tol);
    });
    std::size_t best = 0;
    for (std::size_t r = 1; r < runs.size(); ++r)
        if (runs[r].inertia < runs[best].inertia) best = r;
    return std::move(runs[best]);
}

}  // namespace netmod
