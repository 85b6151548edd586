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
// vectorises the inner loop over p); larger p take a generic loop.
// Thread safety: pure functions of their arguments; outputs must not alias
// inputs.
#pragma once

#include <algorithm>
#include <cstdint>

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

template <int P>
void csr_rows_p(const Index* indptr, const Index* indices, const double* val, Index r,
                const double* X, double* Y, Index pp) {
    const Index p = Width<P>::get(pp);
    for (Index i = 0; i < r; ++i) {
        double* y = Y + i * p;
        if constexpr (P > 0) {
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
        } else {
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
        case 10: fn<10>(__VA_ARGS__); break;            \
        case 12: fn<12>(__VA_ARGS__); break;            \
        case 16: fn<16>(__VA_ARGS__); break;            \
        default: fn<0>(__VA_ARGS__); break;             \
    }

// Y (r x p) += B (r x q) X (q x p)
inline void dense_rows(const double* B, Index r, Index q, const double* X, double* Y, Index p) {
    NETMOD_DISPATCH_P(dense_rows_p, p, B, r, q, X, Y, p)
}
inline void csr_rows(const Index* indptr, const Index* indices, const double* val, Index r,
                     const double* X, double* Y, Index p) {
    NETMOD_DISPATCH_P(csr_rows_p, p, indptr, indices, val, r, X, Y, p)
}
#undef NETMOD_DISPATCH_P

}  // namespace netmod::kernels
