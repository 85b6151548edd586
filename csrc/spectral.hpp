// spectral.hpp — normalised spectral clustering of a graph (CsrGraph or
// LayeredGraph, see operators.hpp).
//
// Contract: `spectral(g, opts)` removes zero-degree nodes, finds the
// n_clusters smallest eigenpairs of the symmetric normalised Laplacian
// I - D^-1/2 A D^-1/2 of what remains (= largest of N = D^-1/2 A D^-1/2),
// divides the eigenvectors by sqrt(degree) (Shi-Malik embedding), runs k-means
// on the rows, and returns labels (0..k-1, largest cluster first, ties by
// lowest node, none empty; -1 for zero-degree nodes), eigenvalues (ascending), the
// eigenvectors (n x k, zero rows for removed nodes) and the n-cut.
// Connected components are found first: each contributes the exact eigenpair
// (0, sqrt(d)/sqrt(vol)) which is locked, and the Lanczos solver works in
// the orthogonal complement, so eigenvalue 0 of any multiplicity is exact.
// With c >= n_clusters components the c-fold eigenvalue 0 leaves the basis
// open; the n_clusters components of largest volume are used (ties: first).
// Solver: a LayeredGraph whose layer graph is 2-coloured (operators.hpp; any
// chain) is solved on the bipartite square B^T B of its smaller colour
// ("bipartite-lanczos"), checked on N itself; otherwise, or when that check
// fails, Lanczos runs on the full layered operator or the CSR one
// ("lanczos"). SpectralResult::solver says which.
// Errors: std::invalid_argument for n_clusters out of [2, n_kept].
// Threads: one ThreadPool of opts.n_threads members (or the caller's pool)
// serves both the operator applications of the eigensolver (their row
// blocks, on layered graphs large enough to pay for it) and the k-means
// restarts; the results do not depend on the number of threads.
// Thread safety: pure.
#pragma once

#include "kmeans.hpp"
#include "lanczos.hpp"
#include "operators.hpp"

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <string>
#include <vector>

namespace netmod {

struct SpectralOptions {
    Index n_clusters = 12;
    bool cluster = true;  // false: eigenpairs only
    int n_threads = 1;  // members of the pool spectral() makes when given none
    LanczosOptions lanczos;
    KMeansOptions kmeans;
};

struct SpectralResult {
    std::vector<Index> labels;       // n, or empty when !cluster
    Eigen::VectorXd eigenvalues;     // ascending
    Mat vectors;                     // n x k
    std::vector<char> kept;          // n
    double ncut = 0.0;
    double inertia = 0.0;
    Index n_components = 0;
    Index n_matvec = 0;
    Index n_restarts = 0;
    double max_residual = 0.0;
    std::string solver = "components";  // or "lanczos", "bipartite-lanczos"
};

namespace detail {

// Union-find over the kept nodes; component ids ordered by first node.
template <class G>
std::vector<Index> components(const G& g, const Compaction& c, Index& n_comp) {
    const Index n = c.size();
    std::vector<Index> parent(n);
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](Index x) {
        while (parent[x] != x) {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        return x;
    };
    g.for_each_edge([&](Index i, Index j, double) {
        const Index a = find(c.compact_of[i]), b = find(c.compact_of[j]);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);
    });
    std::vector<Index> id(n, -1), comp(n);
    n_comp = 0;
    for (Index i = 0; i < n; ++i) {
        const Index r = find(i);
        if (id[r] < 0) id[r] = n_comp++;
        comp[i] = id[r];
    }
    return comp;
}

// k-means leaves a cluster empty when the embedding has fewer than k
// distinct rows (numerically: structurally equivalent nodes, or weights so
// disparate that rows differ only far below round-off). The partition must
// still have k clusters: each empty one takes the last member of the then
// largest cluster (ties: lowest id), which k <= n_kept makes always possible.
inline void fill_empty_clusters(std::vector<std::int64_t>& raw, Index k) {
    std::vector<Index> size(k, 0);
    for (const std::int64_t c : raw) ++size[c];
    for (Index c = 0; c < k; ++c) {
        if (size[c] > 0) continue;
        const Index big = static_cast<Index>(std::max_element(size.begin(), size.end()) - size.begin());
        for (std::size_t i = raw.size(); i-- > 0;) {
            if (raw[i] == big) {
                raw[i] = c;
                break;
            }
        }
        --size[big];
        ++size[c];
    }
}

// Relabel 0..k-1 by decreasing size, ties by lowest first member.
inline std::vector<Index> relabel_by_size(const std::vector<std::int64_t>& raw, Index k) {
    std::vector<Index> size(k, 0), first(k, -1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        ++size[raw[i]];
        if (first[raw[i]] < 0) first[raw[i]] = static_cast<Index>(i);
    }
    std::vector<Index> order(k);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](Index a, Index b) {
        if (size[a] != size[b]) return size[a] > size[b];
        return first[a] < first[b];
    });
    std::vector<Index> rank(k);
    for (Index r = 0; r < k; ++r) rank[order[r]] = r;
    std::vector<Index> out(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) out[i] = rank[raw[i]];
    return out;
}

// Eigenpairs of a bipartite layered N (its layers 2-coloured) through B^T B
// on its smaller colour: eigenvalue sigma^2 there, eigenvector
// [B v / sigma; v] / sqrt(2) of N. Fills the last `want` columns of X and
// entries of lam; returns false (and leaves them alone) when the layer graph
// is not bipartite or the square cannot give them reliably: too few nodes on
// the side, or a wanted sigma so small that B v / sigma is noise.
inline bool bipartite_eigenpairs(const LayeredOperator& op, const Mat& Zall, Index want,
                                 const LanczosOptions& lopts, Mat& X, Eigen::VectorXd& lam,
                                 SpectralResult& res) {
    if (!op.bipartite()) return false;
    Index side_size[2] = {0, 0};
    for (Index l = 0; l < op.n_layers(); ++l) side_size[op.colour(l)] += op.size(l);
    const int side = side_size[1] <= side_size[0] ? 1 : 0;
    const SideSquareOperator sq(op, side);
    const Index c = Zall.cols();
    if (want > sq.dim() - c) return false;

    // Each component's sqrt(degree) vector has half its mass on each side.
    RowMat Zs;
    sq.gather(Zall, Zs);
    for (Index j = 0; j < c; ++j) Zs.col(j).normalize();

    LanczosOptions o = lopts;
    o.squared = true;
    EigenPairs ep = largest_eigenpairs(sq, Mat(Zs), want, o);
    res.n_matvec += ep.n_matvec;
    res.n_restarts += ep.n_restarts;
    if (ep.values.minCoeff() < 1e-10) return false;

    RowMat V, BV = RowMat::Zero(op.dim(), want);
    sq.scatter(ep.vectors, V);
    op.apply_from(side, V, BV);
    for (Index j = 0; j < want; ++j) {
        const double nrm = BV.col(j).norm();
        if (!(nrm > 0.0)) return false;
        BV.col(j) /= nrm;
    }
    const RowMat Xn = (V + BV) * std::sqrt(0.5);
    const Eigen::VectorXd sigma = ep.values.array().sqrt().matrix();

    // Check on N itself: the pairs are accepted only if they meet tol there.
    RowMat NX;
    op.apply(Xn, NX);
    res.n_matvec += want;
    const double resid = (NX - Xn * sigma.asDiagonal()).colwise().norm().maxCoeff();
    if (resid > 2.0 * lopts.tol) return false;
    X.rightCols(want) = Xn;
    lam.tail(want) = (1.0 - sigma.array()).max(0.0).matrix();
    res.max_residual = resid;
    res.solver = "bipartite-lanczos";
    return true;
}

// k-means of the Shi-Malik embedding X.row(i) / sqrt(degree) (X: nk x k, the
// kept nodes' eigenvector rows), then labels of all g's nodes (-1 for the
// removed ones, clusters by decreasing size, none empty) and their n-cut.
template <class G>
void cluster_rows(const G& g, const Compaction& comp, const Mat& X, Index k, const KMeansOptions& kopts,
                  ThreadPool& pool, std::vector<Index>& labels, double& ncut, double& inertia) {
    const Index nk = comp.size();
    KRowMat emb(nk, k);
    for (Index i = 0; i < nk; ++i) emb.row(i) = X.row(i).leftCols(k) * comp.inv_sqrt[i];
    const KMeansResult km = kmeans(emb, k, kopts, pool);
    inertia = km.inertia;
    std::vector<std::int64_t> raw = km.labels;
    fill_empty_clusters(raw, k);
    const std::vector<Index> compact_labels = relabel_by_size(raw, k);
    labels.assign(g.n_nodes(), -1);
    for (Index i = 0; i < nk; ++i) labels[comp.node_of[i]] = compact_labels[i];
    ncut = g.ncut(labels.data(), k);
}

}  // namespace detail

// Storage a caller may keep across calls (one per thread) so that repeated
// clusterings of same-sized layered graphs reuse the operator's memory.
struct SpectralWorkspace {
    LayeredOperator op;
};

// `pool`: threads for the operator products and the k-means restarts
// (opts.n_threads and opts.kmeans.n_threads are then not used).
template <class G>
SpectralResult spectral(const G& g, const SpectralOptions& opts, SpectralWorkspace* ws,
                        ThreadPool& pool) {
    const Compaction comp(g.degrees());
    const Index n = g.n_nodes(), nk = comp.size(), k = opts.n_clusters;
    if (k < 2) throw std::invalid_argument("n_clusters must be >= 2, got " + std::to_string(k));
    if (k > nk)
        throw std::invalid_argument("n_clusters must be <= the number of non-isolated nodes (" +
                                    std::to_string(nk) + "), got " + std::to_string(k));
    SpectralResult res;
    const std::vector<Index> cid = detail::components(g, comp, res.n_components);
    const Index c = res.n_components;

    // Exact eigenvectors of eigenvalue 1 of N: sqrt(degree) on each component.
    std::vector<double> vol(c, 0.0);
    for (Index i = 0; i < nk; ++i) vol[cid[i]] += comp.degree[comp.node_of[i]];
    std::vector<Index> by_vol(c);
    std::iota(by_vol.begin(), by_vol.end(), 0);
    std::stable_sort(by_vol.begin(), by_vol.end(), [&](Index a, Index b) { return vol[a] > vol[b]; });
    const Index locked = std::min(c, k);
    Mat Zall = Mat::Zero(nk, c);
    for (Index i = 0; i < nk; ++i)
        Zall(i, cid[i]) = std::sqrt(comp.degree[comp.node_of[i]] / vol[cid[i]]);

    Mat X(nk, k);
    Eigen::VectorXd lam(k);
    for (Index j = 0; j < locked; ++j) {
        X.col(j) = Zall.col(c >= k ? by_vol[j] : j);
        lam[j] = 0.0;
    }
    if (c < k) {
        auto general = [&](const Operator& op) {
            EigenPairs ep = largest_eigenpairs(op, Zall, k - c, opts.lanczos);
            X.rightCols(k - c) = ep.vectors;
            lam.tail(k - c) = (1.0 - ep.values.array()).max(0.0).matrix();
            res.n_matvec += ep.n_matvec;
            res.n_restarts += ep.n_restarts;
            res.max_residual = ep.max_residual;
            res.solver = "lanczos";
        };
        if constexpr (std::is_same_v<G, LayeredGraph>) {
            std::unique_ptr<LayeredOperator> owned;
            LayeredOperator* op = ws ? &ws->op : nullptr;
            if (op) {
                g.layered_into(comp, *op);
            } else {
                owned = g.layered(comp);
                op = owned.get();
            }
            // Operator applications split over the pool pay off only on big
            // blocks. The operator may be the caller's (ws): it must not keep
            // the pool past this call, also when the solver throws.
            struct Detach {
                LayeredOperator* op;
                ~Detach() { op->set_pool(nullptr); }
            } detach{op};
            op->set_pool(op->work() >= 100000 ? &pool : nullptr);
            // Not bipartite, or the square failed its check: the full
            // operator (the same one, its products split the same way).
            if (!detail::bipartite_eigenpairs(*op, Zall, k - c, opts.lanczos, X, lam, res)) general(*op);
        } else {
            general(*g.normalized(comp));
        }
    }
    res.eigenvalues = lam;
    res.kept.assign(n, 0);
    res.vectors = Mat::Zero(n, k);
    for (Index i = 0; i < nk; ++i) {
        res.kept[comp.node_of[i]] = 1;
        res.vectors.row(comp.node_of[i]) = X.row(i);
    }
    if (!opts.cluster) return res;
    detail::cluster_rows(g, comp, X, k, opts.kmeans, pool, res.labels, res.ncut, res.inertia);
    return res;
}

template <class G>
SpectralResult spectral(const G& g, const SpectralOptions& opts, SpectralWorkspace* ws = nullptr) {
    ThreadPool pool(opts.n_threads);
    return spectral(g, opts, ws, pool);
}

// One eigensolve for the largest k, then the partition at every k of `ks`:
// what spectral() with n_clusters = k and the same seed gives, but with the
// first k of the max(ks) eigenvectors (exactly the same embedding up to the
// eigensolver's tolerance: when eigenvalue k is well separated from k + 1 the
// labels agree). `n_eigenvalues` (>= max(ks)) eigenpairs are found, e.g.
// one more than max(ks) for the eigengap after it. With c >= k connected components, k's embedding is that of
// the k components of largest volume, as in spectral().
struct SweepResult {
    Eigen::VectorXd eigenvalues;  // max(n_eigenvalues, max(ks)), ascending
    std::vector<std::vector<Index>> labels;  // per k of ks
    std::vector<double> ncut, inertia;
    Index n_components = 0, n_matvec = 0, n_restarts = 0;
    double max_residual = 0.0;
    std::string solver;
};

template <class G>
SweepResult spectral_sweep(const G& g, const std::vector<Index>& ks, const SpectralOptions& opts,
                           Index n_eigenvalues = 0) {
    if (ks.empty()) throw std::invalid_argument("ks must not be empty");
    SpectralOptions eo = opts;
    eo.n_clusters = std::max(n_eigenvalues, *std::max_element(ks.begin(), ks.end()));
    for (const Index k : ks)
        if (k < 2) throw std::invalid_argument("every k must be >= 2, got " + std::to_string(k));
    eo.cluster = false;
    ThreadPool pool(opts.n_threads);
    const SpectralResult e = spectral(g, eo, nullptr, pool);
    const Compaction comp(g.degrees());
    const Index nk = comp.size(), K = eo.n_clusters;
    Mat X(nk, K);
    for (Index i = 0; i < nk; ++i) X.row(i) = e.vectors.row(comp.node_of[i]);
    // The components by decreasing volume, as spectral() orders them.
    Index c = 0;
    const std::vector<Index> cid = detail::components(g, comp, c);
    std::vector<double> vol(c, 0.0);
    for (Index i = 0; i < nk; ++i) vol[cid[i]] += comp.degree[comp.node_of[i]];
    std::vector<Index> by_vol(c);
    std::iota(by_vol.begin(), by_vol.end(), 0);
    std::stable_sort(by_vol.begin(), by_vol.end(), [&](Index a, Index b) { return vol[a] > vol[b]; });
    SweepResult r;
    r.eigenvalues = e.eigenvalues;
    r.n_components = e.n_components;
    r.n_matvec = e.n_matvec;
    r.n_restarts = e.n_restarts;
    r.max_residual = e.max_residual;
    r.solver = e.solver;
    for (const Index k : ks) {
        Mat Xk = X.leftCols(k);
        if (c >= k && c < K) {
            // spectral() with this k locks the k largest components; the K solve
            // holds all c of them in component order.
            Xk.setZero();
            for (Index i = 0; i < nk; ++i)
                for (Index j = 0; j < k; ++j)
                    if (cid[i] == by_vol[j]) Xk(i, j) = std::sqrt(comp.degree[comp.node_of[i]] / vol[cid[i]]);
        }
        std::vector<Index> labels;
        double ncut = 0.0, inertia = 0.0;
        detail::cluster_rows(g, comp, Xk, k, opts.kmeans, pool, labels, ncut, inertia);
        r.labels.push_back(std::move(labels));
        r.ncut.push_back(ncut);
        r.inertia.push_back(inertia);
    }
    return r;
}

}  // namespace netmod
