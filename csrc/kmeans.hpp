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
// so the result does not depend on n_threads. X is first rescaled by a power
// of two into [1/2, 1) (exact), so data of any finite magnitude clusters as
// it would at unit scale; the inertia is scaled back.
// Speed without changing a bit of the result: assignments are screened in
// single precision and only rows whose nearest centre is not clear beyond a
// bound on the rounding error are recomputed in double (ScreenPanels;
// opts.screen = false turns the screen off); k-means++ draws by binary
// search in the running sums of the distances; cluster sums of consecutive
// rows of one cluster are added in registers.
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
#include <type_traits>
#include <vector>

namespace netmod {

struct KMeansOptions {
    int n_init = 10;
    int max_iter = 300;
    double rel_tol = 1e-4;
    std::uint64_t seed = 0;
    int n_threads = 1;  // pool size when kmeans() is given no pool
    bool screen = true;  // float screen for the assignments (same labels; see ScreenPanels)
};

struct KMeansResult {
    std::vector<std::int64_t> labels;
    double inertia = 0.0;
    int n_iter = 0;
    std::int64_t n_redone = 0;  // rows the float screen left to the double kernel (this run)
};

namespace detail {

using KRowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// f(std::integral_constant<int, v>{}) for v in 2..16, f(...<int, 0>{}) (the
// run-time-width version) otherwise: the kernels below fix k, d or the
// number of k-means++ candidates at compile time so their accumulators stay
// in registers.
template <class F>
decltype(auto) by_width(std::int64_t v, F&& f) {
    switch (v) {
#define NETMOD_W(x) \
    case x: return f(std::integral_constant<int, x>{});
        NETMOD_W(2) NETMOD_W(3) NETMOD_W(4) NETMOD_W(5) NETMOD_W(6) NETMOD_W(7) NETMOD_W(8)
        NETMOD_W(9) NETMOD_W(10) NETMOD_W(11) NETMOD_W(12) NETMOD_W(13) NETMOD_W(14)
        NETMOD_W(15) NETMOD_W(16)
#undef NETMOD_W
        default: return f(std::integral_constant<int, 0>{});
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

// For the candidate centres (rows of cand, squared norms cn): G(i, t) =
// x_i . cand_t (lane kernel, features in order) into G (n x T, row-major), and
// pot[t] = sum over rows in order of min(closest_i, max(0, |x_i|^2 - 2 G(i, t)
// + cn_t)), the potential if candidate t were added. T > 0 fixes the number
// of candidates so the accumulators stay in registers; the T sums run side by
// side, each in row order.
template <int T>
void trial_potentials(const Panels& P, const KRowMat& cand, const Eigen::VectorXd& cn,
                      const Eigen::VectorXd& xn, const std::vector<double>& closest,
                      std::vector<double>& G, std::vector<double>& pot) {
    const std::int64_t nt = T > 0 ? T : cand.rows(), d = P.d, n = P.n;
    // Two panels per pass: 2 T independent accumulator chains.
    std::vector<Lanes> spare(T > 0 ? 0 : static_cast<std::size_t>(2 * nt));
    Lanes fixed[T > 0 ? 2 * T : 1];
    Lanes* a = T > 0 ? fixed : spare.data();
    Lanes* a2 = a + nt;
    for (std::int64_t b = 0; b < P.blocks; b += 2) {
        const Lanes* x = P.data.data() + b * d;
        const Lanes* x2 = b + 1 < P.blocks ? x + d : x;
        for (std::int64_t t = 0; t < nt; ++t) a[t] = a2[t] = Lanes{};
        for (std::int64_t f = 0; f < d; ++f) {
            const Lanes xf = x[f], xf2 = x2[f];
            for (std::int64_t t = 0; t < nt; ++t) {
                const double w = cand(t, f);
                a[t] += xf * w;
                a2[t] += xf2 * w;
            }
        }
        for (int j = 0; j < 2 * kLanes; ++j) {
            const std::int64_t i = b * kLanes + j;
            if (i >= n) break;
            const Lanes* src = j < kLanes ? a : a2;
            for (std::int64_t t = 0; t < nt; ++t)
                G[static_cast<std::size_t>(i * nt + t)] = src[t][j % kLanes];
        }
    }
    double acc[T > 0 ? T : 1] = {};
    std::vector<double> spare_acc(T > 0 ? 0 : static_cast<std::size_t>(nt), 0.0);
    double* p = T > 0 ? acc : spare_acc.data();
    for (std::int64_t i = 0; i < n; ++i) {
        const double* g = G.data() + i * nt;
        for (std::int64_t t = 0; t < nt; ++t)
            p[t] += std::min(closest[i], std::max(0.0, xn[i] - 2.0 * g[t] + cn[t]));
    }
    for (std::int64_t t = 0; t < nt; ++t) pot[t] = p[t];
}

// Greedy k-means++: each new centre is the best (lowest potential) of
// `trials` candidates drawn with probability proportional to the squared
// distance to the nearest centre so far. A draw r in [0, potential) picks
// the first row whose running sum of those distances exceeds r: the running
// sums are kept as a prefix array (they never decrease), so a binary search
// finds the row the linear scan would.
inline void kmeanspp(const KRowMat& X, const Panels& P, const Eigen::VectorXd& xn,
                     std::int64_t k, Rng& rng, KRowMat& C) {
    const std::int64_t n = X.rows();
    const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
    std::vector<double> closest(n), prefix(n), G(static_cast<std::size_t>(n * trials)), pots(trials);
    std::vector<std::int64_t> cand(trials);
    Eigen::VectorXd cand_norm(trials);
    KRowMat cand_rows(trials, X.cols());
    auto running_sums = [&]() {
        double acc = 0.0;
        for (std::int64_t i = 0; i < n; ++i) prefix[i] = acc += closest[i];
        return acc;
    };

    const std::int64_t first = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n)));
    C.row(0) = X.row(first);
    const Eigen::VectorXd g0 = X * X.row(first).transpose();
    for (std::int64_t i = 0; i < n; ++i) closest[i] = std::max(0.0, xn[i] - 2.0 * g0[i] + xn[first]);
    double pot = running_sums();
    for (std::int64_t c = 1; c < k; ++c) {
        for (int t = 0; t < trials; ++t) {
            std::int64_t idx = n - 1;
            if (pot > 0.0) {
                const double r = rng.uniform() * pot;
                const auto hit = std::upper_bound(prefix.begin(), prefix.end(), r);
                if (hit != prefix.end()) idx = hit - prefix.begin();
            } else {
                idx = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n)));
            }
            cand[t] = idx;
            cand_rows.row(t) = X.row(idx);
            cand_norm[t] = xn[idx];
        }
        by_width(trials, [&](auto T) {
            trial_potentials<decltype(T)::value>(P, cand_rows, cand_norm, xn, closest, G, pots);
        });
        int best = 0;
        double best_pot = std::numeric_limits<double>::infinity();
        for (int t = 0; t < trials; ++t) {
            if (pots[t] < best_pot) {
                best_pot = pots[t];
                best = t;
            }
        }
        for (std::int64_t i = 0; i < n; ++i)
            closest[i] = std::min(closest[i], std::max(0.0, xn[i] - 2.0 * G[i * trials + best] + cand_norm[best]));
        C.row(c) = X.row(cand[best]);
        pot = running_sums();  // equals best_pot: the same additions in the same order
    }
}

// For the rows of panel b: the nearest of the k centres (rows of C, squared
// norms cn) by s_c = |c|^2 - 2 x.c (ties: lowest c), its squared distance
// max(0, s + |x|^2) into dist and the label into labels (changed is set when
// one differs from before); returns the sum of the distances. Each lane sums
// x.c over the features in order, so a row's result does not depend on its
// lane, its panel or the build's vector width. K > 0 fixes k at compile time
// so the k accumulators (g, k entries) stay in registers.
template <int K>
inline double nearest_panel(const Panels& P, std::int64_t b, const KRowMat& C,
                            const Eigen::VectorXd& cn, const Eigen::VectorXd& xn,
                            std::int64_t* labels, double* dist, bool& changed, Lanes* g) {
    const std::int64_t k = K > 0 ? K : C.rows(), d = P.d;
    const Lanes* x = P.data.data() + b * d;
    for (std::int64_t c = 0; c < k; ++c) g[c] = Lanes{};
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
    double inertia = 0.0;
    for (int j = 0; j < kLanes; ++j) {
        const std::int64_t i = b * kLanes + j;
        if (i >= P.n) break;
        changed |= labels[i] != arg[j];
        labels[i] = arg[j];
        dist[i] = std::max(0.0, best[j] + xn[i]);
        inertia += dist[i];
    }
    return inertia;
}

template <int K>
double nearest_k(const Panels& P, const KRowMat& C, const Eigen::VectorXd& cn,
                 const Eigen::VectorXd& xn, std::int64_t* labels, double* dist, bool& changed) {
    std::vector<Lanes> spare(K > 0 ? 0 : static_cast<std::size_t>(C.rows()));
    Lanes fixed[K > 0 ? K : 1];
    Lanes* g = K > 0 ? fixed : spare.data();
    double inertia = 0.0;
    for (std::int64_t b = 0; b < P.blocks; ++b)
        inertia += nearest_panel<K>(P, b, C, cn, xn, labels, dist, changed, g);
    return inertia;
}

// The float screen: the same assignment computed in single precision on
// twice as many lanes, trusted for a row only when its best centre beats the
// runner-up by more than a bound on the rounding error of both computations;
// the panels holding any other row are redone by nearest_panel. The labels
// are therefore exactly those of the double kernel (only they are produced:
// distances and inertia come from one double pass at the end of a run).
//
// Error bound. X comes rescaled by a power of two so that max |x_t| is in
// [1/2, 1) (kmeans() and assign_rows() do it; centres, being means of rows,
// stay within it). With u = 2^-24, rounding the data to float, the d-term
// dot product and the final subtraction put s_c within
// (d + 6) u (|x|^2 + |c|^2) of its exact value, plus at most (d + 1) 2^-147
// from values in float's subnormal range; the double computation's error is
// 2^-29 times smaller. A row is trusted when the float gap exceeds `slack` =
// 4 (d + 8) u (|x|^2 + max |c|^2) + (d + 2) 2^-120, more than twice the sum
// of the four errors.
constexpr int kLanesF = simd::kWidthF;
using LanesF = simd::VecF;
using LaneIdxF = simd::VecIdxF;

struct ScreenPanels {
    std::int64_t n = 0, d = 0, blocks = 0;
    bool usable = false;    // X had the unit scale above (false: no screen)
    double rel = 0.0;       // 4 (d + 8) 2^-24
    std::vector<LanesF> data;   // as Panels, kLanesF rows per panel
    std::vector<LanesF> slack;  // per panel: rel * |x|^2 + (d + 2) 2^-120
    explicit ScreenPanels(const KRowMat& X)
        : n(X.rows()), d(X.cols()), blocks((X.rows() + kLanesF - 1) / kLanesF) {
        const double top = X.size() ? X.cwiseAbs().maxCoeff() : 0.0;
        if (!(top >= 0.5 && top < 1.0)) return;
        rel = 4.0 * static_cast<double>(d + 8) * std::ldexp(1.0, -24);
        const float floor = static_cast<float>(static_cast<double>(d + 2) * std::ldexp(1.0, -120));
        data.resize(static_cast<std::size_t>(blocks * d));
        slack.resize(static_cast<std::size_t>(blocks));
        for (std::int64_t b = 0; b < blocks; ++b) {
            LanesF sl = {};
            for (int j = 0; j < kLanesF; ++j) {
                const std::int64_t i = b * kLanesF + j;
                sl[j] = i < n ? static_cast<float>(rel * X.row(i).squaredNorm()) + floor : floor;
            }
            slack[static_cast<std::size_t>(b)] = sl;
            for (std::int64_t t = 0; t < d; ++t) {
                LanesF v = {};
                for (int j = 0; j < kLanesF; ++j) {
                    const std::int64_t i = b * kLanesF + j;
                    v[j] = i < n ? static_cast<float>(X(i, t)) : 0.0f;
                }
                data[static_cast<std::size_t>(b * d + t)] = v;
            }
        }
        usable = true;
    }
};

// Labels of all rows against centres C (squared norms cn) as described above;
// sets changed like nearest_k. Returns the number of rows redone in double.
template <int K>
std::int64_t screen_k(const ScreenPanels& S, const Panels& P, const KRowMat& C,
                      const Eigen::VectorXd& cn, const Eigen::VectorXd& xn,
                      std::int64_t* labels, double* dist, bool& changed) {
    const std::int64_t k = K > 0 ? K : C.rows(), d = S.d;
    std::vector<float> cf(static_cast<std::size_t>(k * d)), cnf(static_cast<std::size_t>(k));
    double cmax = 0.0;
    for (std::int64_t c = 0; c < k; ++c) {
        for (std::int64_t t = 0; t < d; ++t)
            cf[static_cast<std::size_t>(c * d + t)] = static_cast<float>(C(c, t));
        cnf[static_cast<std::size_t>(c)] = static_cast<float>(cn[c]);
        cmax = std::max(cmax, cn[c]);
    }
    const float cslack = static_cast<float>(S.rel * cmax);
    std::vector<LanesF> spare(K > 0 ? 0 : static_cast<std::size_t>(k));
    LanesF fixed[K > 0 ? K : 1];
    LanesF* g = K > 0 ? fixed : spare.data();
    std::vector<Lanes> spare_d(K > 0 ? 0 : static_cast<std::size_t>(k));
    Lanes fixed_d[K > 0 ? K : 1];
    Lanes* gd = K > 0 ? fixed_d : spare_d.data();
    constexpr float inf = std::numeric_limits<float>::infinity();
    std::int64_t redone = 0;
    for (std::int64_t b = 0; b < S.blocks; ++b) {
        const LanesF* x = S.data.data() + b * d;
        for (std::int64_t c = 0; c < k; ++c) g[c] = LanesF{};
        for (std::int64_t t = 0; t < d; ++t) {
            const LanesF xt = x[t];
            for (std::int64_t c = 0; c < k; ++c) g[c] += xt * cf[static_cast<std::size_t>(c * d + t)];
        }
        LanesF best = cnf[0] - 2.0f * g[0], second = LanesF{} + inf;
        LaneIdxF arg = LaneIdxF{};
        for (std::int64_t c = 1; c < k; ++c) {
            const LanesF s = cnf[static_cast<std::size_t>(c)] - 2.0f * g[c];
            const LaneIdxF lower = s < best;
            second = lower ? best : (s < second ? s : second);
            best = lower ? s : best;
            arg = lower ? LaneIdxF{} + static_cast<std::int32_t>(c) : arg;
        }
        const LaneIdxF sure = (second - best) > (S.slack[static_cast<std::size_t>(b)] + cslack);
        bool redo[2] = {false, false};
        for (int j = 0; j < kLanesF; ++j) {
            const std::int64_t i = b * kLanesF + j;
            if (i >= S.n) break;
            if (!sure[j]) {
                redo[j / kLanes] = true;
                continue;
            }
            changed |= labels[i] != arg[j];
            labels[i] = arg[j];
        }
        for (int h = 0; h < 2; ++h)
            if (redo[h]) {
                nearest_panel<K>(P, 2 * b + h, C, cn, xn, labels, dist, changed, gd);
                redone += std::min<std::int64_t>(kLanes, S.n - (2 * b + h) * kLanes);
            }
    }
    return redone;
}

inline double nearest_centres(const Panels& P, const KRowMat& C, const Eigen::VectorXd& cn,
                              const Eigen::VectorXd& xn, std::int64_t* labels, double* dist,
                              bool& changed) {
    return by_width(C.rows(), [&](auto K) {
        return nearest_k<decltype(K)::value>(P, C, cn, xn, labels, dist, changed);
    });
}

inline std::int64_t screen_centres(const ScreenPanels& S, const Panels& P, const KRowMat& C,
                                   const Eigen::VectorXd& cn, const Eigen::VectorXd& xn,
                                   std::int64_t* labels, double* dist, bool& changed) {
    return by_width(C.rows(), [&](auto K) {
        return screen_k<decltype(K)::value>(S, P, C, cn, xn, labels, dist, changed);
    });
}

// Adds the rows of X to the sums of their clusters, in row order. A run of
// rows with the same label is summed in registers (D > 0 fixes d), so
// consecutive rows of one cluster do not wait on each other's stores; the
// additions, and so the sums, are exactly those of the plain loop.
template <int D>
void add_rows(const KRowMat& X, const std::int64_t* labels, KRowMat& sums,
              std::vector<std::int64_t>& count) {
    const std::int64_t n = X.rows(), d = D > 0 ? D : X.cols();
    if constexpr (D == 0) {
        for (std::int64_t i = 0; i < n; ++i) {
            double* s = sums.data() + labels[i] * d;
            const double* x = X.data() + i * d;
            for (std::int64_t t = 0; t < d; ++t) s[t] += x[t];
            ++count[labels[i]];
        }
    } else {
        constexpr int V = D / kLanes, R = D % kLanes;
        std::int64_t i = 0;
        while (i < n) {
            const std::int64_t c = labels[i];
            double* s = sums.data() + c * D;
            Lanes av[V > 0 ? V : 1];
            double ar[R > 0 ? R : 1];
            for (int v = 0; v < V; ++v) av[v] = simd::load(s + v * kLanes);
            for (int r = 0; r < R; ++r) ar[r] = s[V * kLanes + r];
            std::int64_t j = i;
            for (; j < n && labels[j] == c; ++j) {
                const double* x = X.data() + j * D;
                for (int v = 0; v < V; ++v) av[v] += simd::load(x + v * kLanes);
                for (int r = 0; r < R; ++r) ar[r] += x[V * kLanes + r];
            }
            for (int v = 0; v < V; ++v) simd::store(s + v * kLanes, av[v]);
            for (int r = 0; r < R; ++r) s[V * kLanes + r] = ar[r];
            count[c] += j - i;
            i = j;
        }
    }
}

inline void cluster_sums(const KRowMat& X, const std::int64_t* labels, KRowMat& sums,
                         std::vector<std::int64_t>& count) {
    by_width(X.cols(), [&](auto D) { add_rows<decltype(D)::value>(X, labels, sums, count); });
}

// The exponent e with max |X| in [2^(e-1), 2^e), 0 for an all-zero X.
// k-means runs on X 2^-e: for normal numbers an exact rescaling, which every
// later product and sum follows exactly, so it changes no label of data whose
// squared norms were representable, and keeps them representable otherwise.
inline int unit_exponent(const KRowMat& X) {
    const double top = X.size() ? X.cwiseAbs().maxCoeff() : 0.0;
    int e = 0;
    if (top > 0.0 && std::isfinite(top)) std::frexp(top, &e);
    return e;
}
inline KRowMat times_pow2(const KRowMat& X, int e) {
    return X.unaryExpr([e](double v) { return std::ldexp(v, e); });
}

// One assignment of the rows of X to the centres C (|C| entries within X's
// largest |entry|, as k-means keeps them), screened or not: for tests.
// Returns the number of rows redone in double (0 when !screen).
inline std::int64_t assign_rows(const KRowMat& X_in, const KRowMat& C_in, bool screen,
                                std::vector<std::int64_t>& labels) {
    const int e = unit_exponent(X_in);
    const KRowMat X = times_pow2(X_in, -e), C = times_pow2(C_in, -e);
    const Panels P(X);
    const ScreenPanels S(X);
    const Eigen::VectorXd xn = X.rowwise().squaredNorm(), cn = C.rowwise().squaredNorm();
    std::vector<double> dist(static_cast<std::size_t>(X.rows()));
    labels.assign(static_cast<std::size_t>(X.rows()), -1);
    bool changed = false;
    if (screen && S.usable) return screen_centres(S, P, C, cn, xn, labels.data(), dist.data(), changed);
    nearest_centres(P, C, cn, xn, labels.data(), dist.data(), changed);
    return 0;
}

inline KMeansResult lloyd(const KRowMat& X, const Panels& P, const ScreenPanels& S,
                          const Eigen::VectorXd& xn, KRowMat& C, const KMeansOptions& opts,
                          double tol) {
    const std::int64_t n = X.rows(), d = X.cols(), k = C.rows();
    const bool screen = opts.screen && S.usable;
    KMeansResult res;
    res.labels.assign(n, -1);
    std::vector<double> dist(n);
    std::vector<std::int64_t> count(k);
    KRowMat sums(k, d), assigned(k, d);

    // Squared distances as |x|^2 - 2 x.c + |c|^2 by the lane kernels above;
    // `assigned` keeps the centres of the latest assignment.
    Eigen::VectorXd cn(k);
    bool exact = true;  // dist and inertia belong to the latest assignment
    auto assign = [&]() {
        cn = C.rowwise().squaredNorm();
        assigned = C;
        bool changed = false;
        if (screen) {
            res.n_redone += screen_centres(S, P, C, cn, xn, res.labels.data(), dist.data(), changed);
            exact = false;
        } else {
            res.inertia = nearest_centres(P, C, cn, xn, res.labels.data(), dist.data(), changed);
            exact = true;
        }
        return changed;
    };
    auto make_exact = [&]() {
        if (exact) return;
        cn = assigned.rowwise().squaredNorm();
        bool changed = false;
        res.inertia = nearest_centres(P, assigned, cn, xn, res.labels.data(), dist.data(), changed);
        exact = true;
    };

    for (int it = 0; it < opts.max_iter; ++it) {
        const bool changed = assign();
        res.n_iter = it + 1;
        if (it > 0 && !changed) break;
        sums.setZero();
        std::fill(count.begin(), count.end(), 0);
        cluster_sums(X, res.labels.data(), sums, count);
        std::vector<char> taken;  // rows already used to re-seed an empty cluster
        if (std::find(count.begin(), count.end(), 0) != count.end()) {
            make_exact();  // the re-seeding reads dist
            taken.assign(n, 0);
        }
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
    make_exact();
    return res;
}

}  // namespace detail

// The restarts run on `pool` (opts.n_threads is then not used).
inline KMeansResult kmeans(const detail::KRowMat& X_in, std::int64_t k, const KMeansOptions& opts,
                           ThreadPool& pool) {
    const std::int64_t n = X_in.rows();
    if (k < 1 || k > n)
        throw std::invalid_argument("kmeans: n_clusters must be in [1, " + std::to_string(n) +
                                    "], got " + std::to_string(k));
    if (opts.n_init < 1) throw std::invalid_argument("kmeans: n_init must be >= 1");
    const int e = detail::unit_exponent(X_in);
    detail::KRowMat rescaled;
    if (e != 0) rescaled = detail::times_pow2(X_in, -e);
    const detail::KRowMat& X = e != 0 ? rescaled : X_in;
    const Eigen::RowVectorXd mean = X.colwise().mean();
    const double tol = opts.rel_tol * (X.rowwise() - mean).colwise().squaredNorm().mean() /
                       static_cast<double>(n);

    const Eigen::VectorXd xn = X.rowwise().squaredNorm();
    const detail::Panels P(X);  // shared, read-only, by all restarts
    const detail::ScreenPanels S = opts.screen ? detail::ScreenPanels(X) : detail::ScreenPanels(detail::KRowMat());
    std::vector<KMeansResult> runs(opts.n_init);
    pool.for_each(opts.n_init, [&](std::int64_t r, int) {
        Rng rng(derive_seed(opts.seed, static_cast<std::uint64_t>(r)));
        detail::KRowMat C(k, X.cols());
        detail::kmeanspp(X, P, xn, k, rng, C);
        runs[r] = detail::lloyd(X, P, S, xn, C, opts, tol);
    });
    std::size_t best = 0;
    for (std::size_t r = 1; r < runs.size(); ++r)
        if (runs[r].inertia < runs[best].inertia) best = r;
    runs[best].inertia = std::ldexp(runs[best].inertia, 2 * e);
    return std::move(runs[best]);
}

inline KMeansResult kmeans(const detail::KRowMat& X, std::int64_t k, const KMeansOptions& opts) {
    ThreadPool pool(worker_count(opts.n_init, opts.n_threads));
    return kmeans(X, k, opts, pool);
}

}  // namespace netmod
