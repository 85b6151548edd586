// kernels.hpp — the block products behind the operators.
//
// Contract: every kernel multiplies a weight block by a block of p vectors
// stored ROW-major (n x p, one node's p values contiguous), accumulating into
// the output: Y += B X, for B dense row-major (r x q) or CSR (int64
// indptr/indices); products with B^T use a stored transpose, because this row
// form (a dot product per output row) runs about twice as fast as the
// scattering column form. One pass over B per product, so a
// weight block streams through the cache once however many vectors ride
// along. p is dispatched to a compile-time width for p <= 16 (the compiler
// vectorises the inner loop over p); larger p take a generic loop. The
// Lanczos solver's narrow blocks have their own kernels: dense blocks times
// 1-3 vectors run the lanes along each row of B (dense_rows_j), CSR blocks
// times 2 vectors hold a node's pair in one 2-lane vector (csr_rows_2).
// Thread safety: pure functions of their arguments; outputs must not alias
// inputs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "simd.hpp"

namespace netmod::kernels {

using Index = std::int64_t;

template <int P>
struct Width {
    static constexpr Index get(Index) { return P; }
};
template <>
struct Width<0> {
    static Index get(Index p) { return p; }
};

template <int P>
void dense_rows_p(const double* B, Index r, Index q, const double* X, double* Y, Index pp) {
    const Index p = Width<P>::get(pp);
    Index i = 0;
    if constexpr (P > 0) {
        // Four rows at once: four independent accumulator chains share each
        // load of X, which keeps the adders busy without FMA or AVX.
        for (; i + 4 <= r; i += 4) {
            const double* b0 = B + i * q;
            const double* b1 = b0 + q;
            const double* b2 = b1 + q;
            const double* b3 = b2 + q;
            double a0[P] = {}, a1[P] = {}, a2[P] = {}, a3[P] = {};
            for (Index j = 0; j < q; ++j) {
                const double* x = X + j * P;
                const double w0 = b0[j], w1 = b1[j], w2 = b2[j], w3 = b3[j];
                for (Index t = 0; t < P; ++t) {
                    a0[t] += w0 * x[t];
                    a1[t] += w1 * x[t];
                    a2[t] += w2 * x[t];
                    a3[t] += w3 * x[t];
                }
            }
            double* y = Y + i * P;
            for (Index t = 0; t < P; ++t) {
                y[t] += a0[t];
                y[P + t] += a1[t];
                y[2 * P + t] += a2[t];
                y[3 * P + t] += a3[t];
            }
        }
    }
    // Leftover rows sum in the same order as the four-row path (from zero,
    // then added to Y), so a row's value does not depend on how the rows were
    // split between threads.
    double acc[P > 0 ? P : 64];
    for (; i < r; ++i) {
        const double* b = B + i * q;
        double* y = Y + i * p;
        for (Index t0 = 0; t0 < p; t0 += 64) {
            const Index w_ = std::min<Index>(64, p - t0);
            for (Index t = 0; t < w_; ++t) acc[t] = 0.0;
            for (Index j = 0; j < q; ++j) {
                const double w = b[j];
                const double* x = X + j * p + t0;
                for (Index t = 0; t < w_; ++t) acc[t] += w * x[t];
            }
            for (Index t = 0; t < w_; ++t) y[t0 + t] += acc[t];
        }
    }
}

using simd::load;
using simd::Vec;
constexpr int kVec = simd::kWidth;

// Y (r x P) += B (r x q) X (q x P) for P <= 3 vectors, where vectorising
// over p (dense_rows_p) leaves most lanes idle: here the lanes run along a
// row of B against X's columns (copied out once per call), four rows at a
// time so each load of X serves four rows. Every row sums its q products in
// the same lane pattern and order whatever rows surround it, so a row's
// value does not depend on how the rows were split between threads.
template <int P>
void dense_rows_j(const double* B, Index r, Index q, const double* X, double* Y) {
    thread_local std::vector<double> cols;
    cols.resize(static_cast<std::size_t>(P * q));
    double* xt = cols.data();
    for (Index j = 0; j < q; ++j)
        for (int t = 0; t < P; ++t) xt[t * q + j] = X[j * P + t];
    const Index qv = q - q % kVec;
    auto finish = [&](const double* b, double* y, const Vec* acc) {
        for (int t = 0; t < P; ++t) {
            double s = 0.0;
            for (int l = 0; l < kVec; ++l) s += acc[t][l];
            for (Index j = qv; j < q; ++j) s += b[j] * xt[t * q + j];
            y[t] += s;
        }
    };
    Index i = 0;
    for (; i + 4 <= r; i += 4) {
        const double* b0 = B + i * q;
        const double* b1 = b0 + q;
        const double* b2 = b1 + q;
        const double* b3 = b2 + q;
        Vec a0[P] = {}, a1[P] = {}, a2[P] = {}, a3[P] = {};
        for (Index j = 0; j < qv; j += kVec) {
            const Vec w0 = load(b0 + j), w1 = load(b1 + j), w2 = load(b2 + j), w3 = load(b3 + j);
            for (int t = 0; t < P; ++t) {
                const Vec x = load(xt + t * q + j);
                a0[t] += w0 * x;
                a1[t] += w1 * x;
                a2[t] += w2 * x;
                a3[t] += w3 * x;
            }
        }
        finish(b0, Y + i * P, a0);
        finish(b1, Y + (i + 1) * P, a1);
        finish(b2, Y + (i + 2) * P, a2);
        finish(b3, Y + (i + 3) * P, a3);
    }
    for (; i < r; ++i) {
        const double* b = B + i * q;
        Vec a[P] = {};
        for (Index j = 0; j < qv; j += kVec) {
            const Vec w = load(b + j);
            for (int t = 0; t < P; ++t) a[t] += w * load(xt + t * q + j);
        }
        finish(b, Y + i * P, a);
    }
}

// Two vectors (the Lanczos block on large graphs): each node's pair of
// values is one 2-lane vector, four accumulators deep.
using Vec2 = double __attribute__((vector_size(2 * sizeof(double))));
using Vec2U = double __attribute__((vector_size(2 * sizeof(double)), aligned(sizeof(double))));
inline void csr_rows_2(const Index* indptr, const Index* indices, const double* val, Index r,
                       const double* X, double* Y) {
    auto x_of = [&](Index e) { return *reinterpret_cast<const Vec2U*>(X + indices[e] * 2); };
    for (Index i = 0; i < r; ++i) {
        Vec2 a0 = {}, a1 = {}, a2 = {}, a3 = {};
        Index e = indptr[i];
        const Index end = indptr[i + 1];
        for (; e + 4 <= end; e += 4) {
            a0 += val[e] * x_of(e);
            a1 += val[e + 1] * x_of(e + 1);
            a2 += val[e + 2] * x_of(e + 2);
            a3 += val[e + 3] * x_of(e + 3);
        }
        if (e < end) a0 += val[e] * x_of(e);
        if (e + 1 < end) a1 += val[e + 1] * x_of(e + 1);
        if (e + 2 < end) a2 += val[e + 2] * x_of(e + 2);
        const Vec2 s = (a0 + a1) + (a2 + a3);
        Y[2 * i] += s[0];
        Y[2 * i + 1] += s[1];
    }
}

template <int P>
void csr_rows_p(const Index* indptr, const Index* indices, const double* val, Index r,
                const double* X, double* Y, Index pp) {
    if constexpr (P == 2) {
        csr_rows_2(indptr, indices, val, r, X, Y);
    } else if constexpr (P > 0) {
        for (Index i = 0; i < r; ++i) {
            double* y = Y + i * P;
            // Two accumulators per lane halve the add-latency chain.
            double a0[P] = {}, a1[P] = {};
            Index e = indptr[i];
            for (; e + 2 <= indptr[i + 1]; e += 2) {
                const double w0 = val[e], w1 = val[e + 1];
                const double* x0 = X + indices[e] * P;
                const double* x1 = X + indices[e + 1] * P;
                for (Index t = 0; t < P; ++t) {
                    a0[t] += w0 * x0[t];
                    a1[t] += w1 * x1[t];
                }
            }
            if (e < indptr[i + 1]) {
                const double w0 = val[e];
                const double* x0 = X + indices[e] * P;
                for (Index t = 0; t < P; ++t) a0[t] += w0 * x0[t];
            }
            for (Index t = 0; t < P; ++t) y[t] += a0[t] + a1[t];
        }
    } else {
        const Index p = pp;
        for (Index i = 0; i < r; ++i) {
            double* y = Y + i * p;
            for (Index e = indptr[i]; e < indptr[i + 1]; ++e) {
                const double w = val[e];
                const double* x = X + indices[e] * p;
                for (Index t = 0; t < p; ++t) y[t] += w * x[t];
            }
        }
    }
}

#define NETMOD_DISPATCH_P(fn, p, ...)                   \
    switch (p) {                                        \
        case 1: fn<1>(__VA_ARGS__); break;              \
        case 2: fn<2>(__VA_ARGS__); break;              \
        case 3: fn<3>(__VA_ARGS__); break;              \
        case 4: fn<4>(__VA_ARGS__); break;              \
        case 5: fn<5>(__VA_ARGS__); break;              \
        case 6: fn<6>(__VA_ARGS__); break;              \
        case 7: fn<7>(__VA_ARGS__); break;              \
        case 8: fn<8>(__VA_ARGS__); break;              \
        case 9: fn<9>(__VA_ARGS__); break;              \
        case 10: fn<10>(__VA_ARGS__); break;            \
        case 11: fn<11>(__VA_ARGS__); break;            \
        case 12: fn<12>(__VA_ARGS__); break;            \
        case 16: fn<16>(__VA_ARGS__); break;            \
        default: fn<0>(__VA_ARGS__); break;             \
    }

// Y (r x p) += B (r x q) X (q x p)
inline void dense_rows(const double* B, Index r, Index q, const double* X, double* Y, Index p) {
    if (p == 1) return dense_rows_j<1>(B, r, q, X, Y);
    if (p == 2) return dense_rows_j<2>(B, r, q, X, Y);
    if (p == 3) return dense_rows_j<3>(B, r, q, X, Y);
    NETMOD_DISPATCH_P(dense_rows_p, p, B, r, q, X, Y, p)
}
inline void csr_rows(const Index* indptr, const Index* indices, const double* val, Index r,
                     const double* X, double* Y, Index p) {
    NETMOD_DISPATCH_P(csr_rows_p, p, indptr, indices, val, r, X, Y, p)
}
#undef NETMOD_DISPATCH_P

}  // namespace netmod::kernels
