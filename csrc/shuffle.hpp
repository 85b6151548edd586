// shuffle.hpp — weight-shuffled null distributions of layered networks.
//
// Contract
// - `compact(g)`: the network (a LayeredGraph: a chain or blocks between any
//   pairs of layers) without its zero-degree units (dead pixels, dead
//   units), as dense row-major signed (n_src, n_dst) matrices with the same
//   pairs in the same order; done once, before any shuffle (REFERENCE.md 4).
//   A layer left with no units keeps its (empty) blocks, so the pairs never
//   change.
// - `shuffle_into(src, dst, method, rng)`: per block, in block order, kLayer
//   permutes all entries of the matrix (zeros included: keeps the multiset of
//   values, not the sparsity pattern); kNonzero permutes the values among the
//   non-zero positions only (keeps the mask). Fisher-Yates with Rng::below,
//   so a replicate is a pure function of its seed.
// - `null_samples(...)`: replicate i (i in [start, start + count)) shuffles
//   with Rng(shuffle_seed(seed, i)) and clusters the shuffled network exactly
//   as spectral() would with seed replicate_seed(seed, i) (newly isolated
//   units are dropped again inside spectral()), recording its n-cut. The
//   samples are identical for any n_threads and any chunking of [0, n).
//   With `observed`, the unshuffled network is clustered in the same pool
//   with the options of `seed` (what spectral() gives it on its own).
//   The replicates run on one ThreadPool of worker_count(tasks, n_threads)
//   members; each clustering makes its own pool of the n_threads its
//   options ask for (1 from the bindings: no threads, no nesting).
// - `compact_upper(g)` / `edge_null_samples(g, o)`: the edge null of any graph
//   (a CsrGraph; REFERENCE.md 6e, the 2021 activation-graph null). The
//   zero-degree nodes are dropped once; the n(n-1)/2 entries of the strict
//   upper triangle of what remains (zeros included) are permuted with
//   permute_all and Rng(shuffle_seed(seed, i)), mirrored into a symmetric CSR
//   graph (zero entries not stored) and clustered with replicate_seed(seed, i)
//   (nodes isolated by the shuffle dropped inside spectral()). With
//   `observed`, g itself (not compacted: what spectral() gives it) comes first.
//   Memory: the triangle once, plus per worker one copy and one CSR of the
//   complete graph (about 20 n^2 bytes).
// Memory: per worker thread one set of weight buffers and one operator,
// rebuilt in place for each of its replicates (capacity is kept), so memory
// does not grow with the number of replicates. Thread safety: pure; workers share only
// the read-only source network.
#pragma once

#include "parallel.hpp"
#include "spectral.hpp"

#include <string>
#include <vector>

namespace netmod {

enum class ShuffleMethod { kLayer, kNonzero };

inline ShuffleMethod parse_method(const std::string& m) {
    if (m == "layer") return ShuffleMethod::kLayer;
    if (m == "nonzero") return ShuffleMethod::kNonzero;
    throw std::invalid_argument("method must be 'layer' or 'nonzero', got '" + m + "'");
}

inline std::uint64_t shuffle_seed(std::uint64_t seed, std::uint64_t i) { return derive_seed(seed, 2 * i); }
inline std::uint64_t replicate_seed(std::uint64_t seed, std::uint64_t i) {
    return derive_seed(seed, 2 * i + 1);
}

struct DenseLayers {
    std::vector<std::vector<double>> w;  // per block, row-major (n_src, n_dst)
    std::vector<Index> sizes;            // units per layer, inputs first
    std::vector<Index> src, dst;         // per block, its two layers

    std::vector<LayerView> views() const {
        std::vector<LayerView> v;
        for (std::size_t b = 0; b < w.size(); ++b) v.push_back({sizes[src[b]], sizes[dst[b]], w[b].data()});
        return v;
    }
    // The graph of these weights (borrowing them); `checked`: known finite.
    LayeredGraph graph(bool checked) const { return LayeredGraph(sizes, src, dst, views(), checked); }
};

inline DenseLayers compact(const LayeredGraph& g) {
    const std::vector<double> deg = g.degrees();
    const std::vector<LayerView>& blocks = g.blocks();
    DenseLayers out;
    out.src = g.src();
    out.dst = g.dst();
    std::vector<std::vector<Index>> kept(g.sizes().size());
    for (std::size_t l = 0; l < kept.size(); ++l) {
        for (Index u = 0; u < g.sizes()[l]; ++u)
            if (deg[g.offsets()[l] + u] > 0.0) kept[l].push_back(u);
        out.sizes.push_back(static_cast<Index>(kept[l].size()));
    }
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        const LayerView& w = blocks[b];
        const std::vector<Index>& rows = kept[g.src()[b]];
        const std::vector<Index>& cols = kept[g.dst()[b]];
        std::vector<double> m;
        m.reserve(rows.size() * cols.size());
        for (Index a : rows)
            for (Index c : cols) m.push_back(w.data[a * w.cols + c]);
        out.w.push_back(std::move(m));
    }
    return out;
}

// Positions of the non-zero entries of each block (for kNonzero).
inline std::vector<std::vector<Index>> nonzero_positions(const DenseLayers& src) {
    std::vector<std::vector<Index>> pos(src.w.size());
    for (std::size_t l = 0; l < src.w.size(); ++l)
        for (std::size_t e = 0; e < src.w[l].size(); ++e)
            if (src.w[l][e] != 0.0) pos[l].push_back(static_cast<Index>(e));
    return pos;
}

// Fisher-Yates over out[0..size), drawing the swap partners a batch ahead so
// their cache lines can be fetched while earlier swaps run (the draws and
// swaps happen in the same order as one at a time).
inline void permute_all(double* out, std::size_t size, Rng& rng) {
    constexpr std::size_t kBatch = 32;
    std::size_t js[kBatch];
    for (std::size_t e = size; e > 1;) {
        const std::size_t m = std::min<std::size_t>(kBatch, e - 1);
        for (std::size_t u = 0; u < m; ++u) {
            js[u] = static_cast<std::size_t>(rng.below(e - u));
            __builtin_prefetch(&out[js[u]]);
        }
        for (std::size_t u = 0; u < m; ++u) std::swap(out[e - u - 1], out[js[u]]);
        e -= m;
    }
}

inline void shuffle_into(const DenseLayers& src, const std::vector<std::vector<Index>>& nz,
                         DenseLayers& dst, ShuffleMethod method, Rng& rng) {
    dst.sizes = src.sizes;
    dst.src = src.src;
    dst.dst = src.dst;
    dst.w.resize(src.w.size());
    for (std::size_t l = 0; l < src.w.size(); ++l) {
        std::vector<double>& out = dst.w[l];
        out = src.w[l];
        // Fisher-Yates (see permute_all).
        if (method == ShuffleMethod::kLayer) {
            permute_all(out.data(), out.size(), rng);
            continue;
        }
        constexpr std::size_t kBatch = 32;
        std::size_t js[kBatch];
        const std::vector<Index>& p = nz[l];
        for (std::size_t e = p.size(); e > 1;) {
            const std::size_t m = std::min<std::size_t>(kBatch, e - 1);
            for (std::size_t u = 0; u < m; ++u) {
                js[u] = static_cast<std::size_t>(rng.below(e - u));
                __builtin_prefetch(&p[js[u]]);
            }
            for (std::size_t u = 0; u < m; ++u) std::swap(out[p[e - u - 1]], out[p[js[u]]]);
            e -= m;
        }
    }
}

// Blocks with at most this fraction of non-zeros are read through a
// SparseIndex (operators.hpp) in each replicate.
constexpr double kSparseIndexDensity = 0.5;

struct NullOptions {
    ShuffleMethod method = ShuffleMethod::kLayer;
    std::uint64_t seed = 0;
    Index start = 0;
    Index count = 0;
    int n_threads = 1;
    // Also cluster the unshuffled (compacted) network with `seed`, as task 0
    // of the same pool (its n-cut comes first in the output): the observed
    // value then shares the threads with the replicates instead of running
    // before them.
    bool observed = false;
    // Builds the clustering options of one replicate from its seed.
    std::function<SpectralOptions(std::uint64_t)> spectral_options;
};

inline std::vector<double> null_samples(const LayeredGraph& g, const NullOptions& o) {
    const DenseLayers src = compact(g);
    const auto nz = nonzero_positions(src);
    const Index first = o.observed ? 1 : 0;
    const Index tasks = o.count + first;
    std::vector<double> samples(static_cast<std::size_t>(tasks), 0.0);
    const auto workers = static_cast<std::size_t>(worker_count(tasks, o.n_threads));
    std::vector<DenseLayers> scratch(workers);
    std::vector<SpectralWorkspace> spaces(workers);
    // Both methods keep each block's number of non-zeros, so which blocks
    // are worth a sparse index is decided once, on the source network.
    std::vector<SparseIndex> indexes(workers);
    std::vector<char> sparse_layers(src.w.size());
    for (std::size_t l = 0; l < src.w.size(); ++l)
        sparse_layers[l] = static_cast<double>(nz[l].size()) <= kSparseIndexDensity * static_cast<double>(src.w[l].size());
    // The slowest task (the observed network is no cheaper than a replicate)
    // goes first, so no worker starts it when the others are nearly done.
    ThreadPool pool(static_cast<int>(workers));
    pool.for_each(tasks, [&](std::int64_t j, int w) {
        if (j < first) {
            LayeredGraph original = src.graph(true);
            original.use_sparse(indexes[static_cast<std::size_t>(w)], sparse_layers);
            samples[0] = spectral(original, o.spectral_options(o.seed), &spaces[w]).ncut;
            return;
        }
        const auto i = static_cast<std::uint64_t>(o.start + j - first);
        Rng rng(shuffle_seed(o.seed, i));
        DenseLayers& buf = scratch[static_cast<std::size_t>(w)];
        shuffle_into(src, nz, buf, o.method, rng);
        LayeredGraph shuffled = buf.graph(true);  // values of g, checked
        shuffled.use_sparse(indexes[static_cast<std::size_t>(w)], sparse_layers);
        samples[static_cast<std::size_t>(j)] =
            spectral(shuffled, o.spectral_options(replicate_seed(o.seed, i)), &spaces[w]).ncut;
    });
    return samples;
}

// The strict upper triangle of a graph without its zero-degree nodes, row by
// row: entry (a, b), a < b, at a * n - a * (a + 1) / 2 + (b - a - 1).
struct UpperTriangle {
    Index n = 0;                 // nodes kept
    std::vector<Index> node_of;  // kept node -> node of g
    std::vector<double> values;  // n (n - 1) / 2
};

inline UpperTriangle compact_upper(const CsrGraph& g) {
    const std::vector<double> deg = g.degrees();
    UpperTriangle t;
    std::vector<Index> compact(static_cast<std::size_t>(g.n_nodes()), -1);
    for (Index i = 0; i < g.n_nodes(); ++i) {
        if (deg[i] > 0.0) {
            compact[i] = t.n++;
            t.node_of.push_back(i);
        }
    }
    const auto n = static_cast<std::size_t>(t.n);
    t.values.assign(n * (n - (n > 0 ? 1 : 0)) / 2, 0.0);
    // Stored entries add up, as in the CSR operator (duplicates are summed).
    g.for_each_edge([&](Index i, Index j, double w) {
        const auto a = static_cast<std::size_t>(compact[i]), b = static_cast<std::size_t>(compact[j]);
        t.values[a * n - a * (a + 1) / 2 + (b - a - 1)] += w;
    });
    return t;
}

// The symmetric CSR matrix of a triangle (its non-zero entries, both
// directions, columns ascending in each row), into reused buffers.
struct CsrBuffers {
    std::vector<Index> indptr, indices, cursor;
    std::vector<double> data;
    CsrGraph graph(Index n) const {
        return CsrGraph(n, indptr.data(), indices.data(), data.data(), static_cast<Index>(data.size()));
    }
};

inline void mirror_into(const std::vector<double>& values, Index n_nodes, CsrBuffers& out) {
    const auto n = static_cast<std::size_t>(n_nodes);
    out.indptr.assign(n + 1, 0);
    std::size_t e = 0;
    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = a + 1; b < n; ++b, ++e)
            if (values[e] != 0.0) {
                ++out.indptr[a + 1];
                ++out.indptr[b + 1];
            }
    for (std::size_t a = 0; a < n; ++a) out.indptr[a + 1] += out.indptr[a];
    const auto nnz = static_cast<std::size_t>(out.indptr[n]);
    out.indices.resize(nnz);
    out.data.resize(nnz);
    out.cursor.assign(out.indptr.begin(), out.indptr.end() - 1);
    // Row b receives its entries from rows a < b before its own (a = b) pass
    // appends the columns above b, so every row comes out sorted.
    e = 0;
    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = a + 1; b < n; ++b, ++e) {
            const double w = values[e];
            if (w == 0.0) continue;
            const auto pa = static_cast<std::size_t>(out.cursor[a]++), pb = static_cast<std::size_t>(out.cursor[b]++);
            out.indices[pa] = static_cast<Index>(b);
            out.data[pa] = w;
            out.indices[pb] = static_cast<Index>(a);
            out.data[pb] = w;
        }
}

struct EdgeNullOptions {
    std::uint64_t seed = 0;
    Index start = 0;
    Index count = 0;
    int n_threads = 1;
    bool observed = false;
    std::function<SpectralOptions(std::uint64_t)> spectral_options;
};

// Replicate i's shuffled triangle (for tests and the Python view of a replicate).
inline std::vector<double> edge_shuffled(const UpperTriangle& t, std::uint64_t seed, std::uint64_t i) {
    std::vector<double> v = t.values;
    Rng rng(shuffle_seed(seed, i));
    permute_all(v.data(), v.size(), rng);
    return v;
}

inline std::vector<double> edge_null_samples(const CsrGraph& g, const EdgeNullOptions& o) {
    const UpperTriangle t = compact_upper(g);
    const Index first = o.observed ? 1 : 0;
    const Index tasks = o.count + first;
    std::vector<double> samples(static_cast<std::size_t>(tasks), 0.0);
    const auto workers = static_cast<std::size_t>(worker_count(tasks, o.n_threads));
    std::vector<std::vector<double>> scratch(workers);
    std::vector<CsrBuffers> csr(workers);
    ThreadPool pool(static_cast<int>(workers));
    pool.for_each(tasks, [&](std::int64_t j, int w) {
        if (j < first) {
            samples[0] = spectral(g, o.spectral_options(o.seed)).ncut;
            return;
        }
        const auto i = static_cast<std::uint64_t>(o.start + j - first);
        std::vector<double>& v = scratch[static_cast<std::size_t>(w)];
        v = t.values;
        Rng rng(shuffle_seed(o.seed, i));
        permute_all(v.data(), v.size(), rng);
        CsrBuffers& b = csr[static_cast<std::size_t>(w)];
        mirror_into(v, t.n, b);
        samples[static_cast<std::size_t>(j)] = spectral(b.graph(t.n), o.spectral_options(replicate_seed(o.seed, i))).ncut;
    });
    return samples;
}

}  // namespace netmod
