// lanczos.hpp — largest eigenpairs of a symmetric operator by block
// thick-restart Lanczos.
//
// Contract: `largest_eigenpairs(A, Z, want, opts)` returns the `want`
// algebraically largest eigenvalues (descending) of the symmetric operator A
// restricted to the orthogonal complement of the orthonormal columns of Z
// (locked vectors, e.g. known exact eigenvectors), with orthonormal Ritz
// vectors whose residual norms ||A x - theta x|| are all <= opts.tol.
// - Block Krylov expansion (block size p) with full re-orthogonalisation
//   (classical Gram-Schmidt, two passes) against Z and the basis; when a new
//   direction is numerically dependent (an invariant subspace was reached, as
//   on disconnected graphs or with repeated eigenvalues) it is replaced by a
//   random direction, so eigenvalues of multiplicity > p are still found.
// - Thick restart: when the basis holds `max_basis` columns, Rayleigh-Ritz on
//   H = V^T A V keeps the best `want + extra` Ritz vectors and continues from
//   the last residual block (the Krylov-Schur relation keeps this a Krylov
//   space). A V is stored, so restarts cost no operator applications.
// - Only the small projected problem uses a dense eigensolver (Eigen).
// - Errors: std::invalid_argument for impossible requests, std::runtime_error
//   (with sizes) when the iteration budget is exhausted.
// Complexity per restart cycle: max_basis operator columns + O(n max_basis^2).
// Thread safety: pure function of its arguments; A must support const apply.
#pragma once

#include "operators.hpp"
#include "rng.hpp"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace netmod {

struct LanczosOptions {
    double tol = 1e-8;
    int block_size = 0;   // 0 = automatic
    int max_basis = 0;    // 0 = automatic
    int max_restarts = 2000;
    std::uint64_t seed = 0;
    // The operator is the square of the one whose residuals matter (B^T B of
    // N): a Ritz pair (theta, v) of the square with residual r gives N a pair
    // with residual ||r|| / sqrt(2 theta), so the test is scaled to match.
    bool squared = false;
};

struct EigenPairs {
    Eigen::VectorXd values;  // descending
    Mat vectors;             // n x want
    Index n_matvec = 0;      // operator columns applied
    Index n_restarts = 0;
    double max_residual = 0.0;
};

namespace detail {

// Remove from Q its components along the columns of B (two CGS passes).
inline void project_out(Mat& Q, const Eigen::Ref<const Mat>& B) {
    if (B.cols() == 0 || Q.cols() == 0) return;
    for (int pass = 0; pass < 2; ++pass) {
        const Mat coef = B.transpose() * Q;
        Q.noalias() -= B * coef;
    }
}

// One classical Gram-Schmidt sweep of the columns of Q against Z, the first
// `cols` columns of V and the first `j` columns of Q itself.
inline void sweep(Mat& Q, Index first, Index count, const Mat& Z, const Mat& V, Index cols) {
    auto q = Q.middleCols(first, count);
    if (Z.cols() > 0) q.noalias() -= Z * (Z.transpose() * q);
    if (cols > 0) q.noalias() -= V.leftCols(cols) * (V.leftCols(cols).transpose() * q);
    if (first > 0) q.noalias() -= Q.leftCols(first) * (Q.leftCols(first).transpose() * q);
}

// Orthonormalise the columns of Q against Z, V[:, :cols] and each other.
// Sweeps repeat while a column loses more than 1/sqrt(2) of its norm (the
// DGKS criterion), so the result is orthogonal to working precision even
// when most of a column was along the basis (as near convergence). A column
// that vanishes (an invariant subspace was reached: disconnected parts,
// repeated eigenvalues) is replaced by a random direction.
inline void orthonormalize(Mat& Q, const Mat& Z, const Mat& V, Index cols, Rng& rng) {
    for (Index j = 0; j < Q.cols(); ++j) {
        const double original = Q.col(j).norm();
        double before = original;
        bool fresh = false;
        for (int pass = 0;; ++pass) {
            sweep(Q, j, 1, Z, V, cols);
            const double now = Q.col(j).norm();
            if (now > 0.7071 * before && now > 1e-300) break;
            if (now <= 1e-13 * (fresh ? 1.0 : original) || pass > 6) {
                if (fresh && pass > 12)
                    throw std::runtime_error("lanczos: cannot extend a basis of " +
                                             std::to_string(cols + j) + " vectors in dimension " +
                                             std::to_string(Q.rows()));
                for (Index i = 0; i < Q.rows(); ++i) Q(i, j) = rng.normal();
                fresh = true;
                before = Q.col(j).norm();
                continue;
            }
            before = now;
        }
        Q.col(j).normalize();
    }
}

}  // namespace detail

inline EigenPairs largest_eigenpairs(const Operator& A, const Mat& Z, Index want,
                                     const LanczosOptions& opts) {
    const Index n = A.dim();
    const Index avail = n - Z.cols();
    if (want < 1 || want > avail)
        throw std::invalid_argument("lanczos: asked for " + std::to_string(want) +
                                    " eigenpairs in a space of dimension " + std::to_string(avail));
    if (!(opts.tol > 0.0)) throw std::invalid_argument("lanczos: tol must be > 0");

    // Block size 2 needs the fewest operator applications on large MLP
    // graphs (measured); small graphs get a wider block, which finds repeated
    // eigenvalues more surely at negligible cost.
    const Index auto_p = n > 400 ? 2 : std::min<Index>(want, 6);
    const Index p = std::min<Index>(avail, opts.block_size > 0 ? opts.block_size : std::max<Index>(auto_p, 1));
    const Index extra = std::max<Index>(p, want / 2 + 2);
    Index m = opts.max_basis > 0 ? opts.max_basis : want + extra + std::max<Index>(4 * p, 2 * want);
    m = std::min(avail, std::max(m, want + extra + p));

    Rng rng(opts.seed);
    Mat V(n, m), AV(n, m);
    Index cols = 0;
    EigenPairs out;

    Mat Q(n, p);
    for (Index j = 0; j < p; ++j)
        for (Index i = 0; i < n; ++i) Q(i, j) = rng.normal();
    detail::orthonormalize(Q, Z, V, 0, rng);
    Mat AQ(n, p);
    RowMat Qr, AQr;

    for (;;) {
        const Index bq = Q.cols();
        Qr = Q;
        A.apply(Qr, AQr);
        AQ = AQr;
        out.n_matvec += bq;
        V.middleCols(cols, bq) = Q;
        AV.middleCols(cols, bq) = AQ;
        cols += bq;

        const bool full = cols == avail;
        if (full || (cols + p > m && m < avail)) {
            Mat H = V.leftCols(cols).transpose() * AV.leftCols(cols);
            H = 0.5 * (H + H.transpose()).eval();
            Eigen::SelfAdjointEigenSolver<Mat> es(H);
            if (es.info() != Eigen::Success)
                throw std::runtime_error("lanczos: projected eigenproblem of size " +
                                         std::to_string(cols) + " failed");
            // Eigen sorts ascending; the wanted pairs are the last columns.
            const Index keep = full ? want : std::min<Index>(cols - 1, std::min(m - p, want + extra));
            Mat Y = es.eigenvectors().rightCols(keep).rowwise().reverse();
            Eigen::VectorXd theta = es.eigenvalues().tail(keep).reverse();

            const Mat X = V.leftCols(cols) * Y.leftCols(want);
            const Mat R = AV.leftCols(cols) * Y.leftCols(want) - X * theta.head(want).asDiagonal();
            double res = 0.0;
            for (Index j = 0; j < want; ++j) {
                double r = R.col(j).norm();
                if (opts.squared) r /= std::sqrt(2.0 * std::max(theta[j], 1e-300));
                res = std::max(res, r);
            }
            if (res <= opts.tol || full) {
                out.values = theta.head(want);
                out.vectors = X;
                out.max_residual = res;
                return out;
            }
            if (++out.n_restarts > opts.max_restarts)
                throw std::runtime_error(
                    "lanczos: no convergence after " + std::to_string(out.n_restarts - 1) +
                    " restarts (" + std::to_string(out.n_matvec) + " operator columns, n=" +
                    std::to_string(n) + ", k=" + std::to_string(want) +
                    ", residual " + std::to_string(res) + " > tol " + std::to_string(opts.tol) + ")");
            // The next block continues from the last residual block, which is
            // orthogonal to the old basis and so to the kept Ritz vectors.
            Q = AQ;
            detail::project_out(Q, Z);
            detail::project_out(Q, V.leftCols(cols));
            V.leftCols(keep) = (V.leftCols(cols) * Y).eval();
            AV.leftCols(keep) = (AV.leftCols(cols) * Y).eval();
            cols = keep;
        } else {
            Q = AQ;
        }
        const Index next = std::min<Index>(p, std::min(avail, m) - cols);
        if (Q.cols() != next) Q.conservativeResize(Eigen::NoChange, next);
        detail::orthonormalize(Q, Z, V, cols, rng);
        AQ.resize(n, next);
    }
}

}  // namespace netmod
