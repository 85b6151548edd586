// simd.hpp — the lane vector type that netmod's hand-vectorised kernels use.
//
// Contract: `Vec` holds kWidth doubles (4 when compiled with AVX, as in the
// _core_avx2 build, else 2), `VecIdx` as many int64 (for vector compares and
// selects); `load` reads one Vec from any 8-byte-aligned address, `store`
// writes one there. `VecF` holds kWidthF = 2 * kWidth floats in the same
// register width, `VecIdxF` as many int32. GCC/Clang vector extensions:
// arithmetic is lane-wise, so a lane's result never depends on its
// neighbours. Thread safety: types and pure functions.
#pragma once

#include <cstdint>

namespace netmod::simd {

#if defined(__AVX__)
constexpr int kWidth = 4;
#else
constexpr int kWidth = 2;
#endif
using Vec = double __attribute__((vector_size(kWidth * sizeof(double))));
using VecIdx = std::int64_t __attribute__((vector_size(kWidth * sizeof(std::int64_t))));
using VecU = double __attribute__((vector_size(kWidth * sizeof(double)), aligned(sizeof(double))));
inline Vec load(const double* p) { return *reinterpret_cast<const VecU*>(p); }
inline void store(double* p, Vec v) { *reinterpret_cast<VecU*>(p) = v; }

constexpr int kWidthF = 2 * kWidth;
using VecF = float __attribute__((vector_size(kWidthF * sizeof(float))));
using VecIdxF = std::int32_t __attribute__((vector_size(kWidthF * sizeof(std::int32_t))));

}  // namespace netmod::simd
