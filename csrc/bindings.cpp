// bindings.cpp — the only file of netmod that includes pybind11.
//
// Each binding reads shapes and pointers from NumPy arrays the Python layer
// has already validated and made contiguous (int64 / float64), allocates the
// outputs, and runs the pure C++ work inside a gil_scoped_release block.
// std::invalid_argument surfaces as ValueError, std::runtime_error as
// RuntimeError (pybind11's standard translation).
#include "operators.hpp"
#include "shuffle.hpp"
#include "spectral.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <time.h>  // clock_gettime, CLOCK_THREAD_CPUTIME_ID (POSIX)

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace py = pybind11;
using netmod::Index;

namespace {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// Index and label arrays must hold integers: a float array would be truncated
// silently by the cast to int64.
I64 as_index(const py::array& a, const char* name) {
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u')
        throw py::type_error(std::string(name) + " must be an integer array, got dtype " +
                             py::str(a.dtype()).cast<std::string>());
    return I64::ensure(a);
}

// Weights must be real numbers: the cast to float64 would drop imaginary parts.
F64 as_real(const py::array& a, const std::string& name) {
    const char kind = a.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b')
        throw py::type_error(name + " must be a real numeric array, got dtype " +
                             py::str(a.dtype()).cast<std::string>());
    return F64::ensure(a);
}

std::vector<F64> as_real_list(const std::vector<py::array>& ws, const char* name = "weights") {
    std::vector<F64> out;
    for (std::size_t l = 0; l < ws.size(); ++l)
        out.push_back(as_real(ws[l], std::string(name) + "[" + std::to_string(l) + "]"));
    return out;
}

// A 2-D array of finite reals with at least one row and one column.
F64 finite_rows(const py::array& a, const std::string& name) {
    F64 m = as_real(a, name);
    if (m.ndim() != 2 || m.shape(0) < 1 || m.shape(1) < 1)
        throw std::invalid_argument(name + " must be a 2-D array with at least one column and one row");
    for (py::ssize_t e = 0; e < m.size(); ++e)
        if (!std::isfinite(m.data()[e])) throw std::invalid_argument(name + " has a NaN or infinite value");
    return m;
}

void require_1d(const py::array& a, const char* name) {
    if (a.ndim() != 1)
        throw std::invalid_argument(std::string(name) + " must be 1-D, got " +
                                    std::to_string(a.ndim()) + "-D");
}

struct Csr {
    I64 indptr, indices;
    F64 data;
    Index n;
    netmod::CsrGraph graph() const {
        return netmod::CsrGraph(n, indptr.data(), indices.data(), data.data(), data.shape(0));
    }
};

Csr make_csr(const py::array& indptr_in, const py::array& indices_in, const py::array& data_in) {
    I64 indptr = as_index(indptr_in, "indptr"), indices = as_index(indices_in, "indices");
    F64 data = as_real(data_in, "data");
    require_1d(indptr, "indptr");
    require_1d(indices, "indices");
    require_1d(data, "data");
    if (indptr.shape(0) < 1) throw std::invalid_argument("indptr must have at least one entry");
    if (indices.shape(0) != data.shape(0))
        throw std::invalid_argument("indices and data must have the same length, got " +
                                    std::to_string(indices.shape(0)) + " and " +
                                    std::to_string(data.shape(0)));
    const Index n = indptr.shape(0) - 1;
    return Csr{std::move(indptr), std::move(indices), std::move(data), n};
}

struct Layers {
    std::vector<F64> arrays;
    std::vector<netmod::LayerView> views;
};

Layers make_layers(const std::vector<py::array>& weights, const char* name = "weights") {
    Layers out;
    out.arrays = as_real_list(weights, name);
    for (std::size_t l = 0; l < out.arrays.size(); ++l) {
        const F64& w = out.arrays[l];
        if (w.ndim() != 2)
            throw std::invalid_argument(std::string(name) + "[" + std::to_string(l) + "] must be 2-D, got " +
                                        std::to_string(w.ndim()) + "-D");
        out.views.push_back({w.shape(0), w.shape(1), w.data()});
    }
    return out;
}

std::vector<Index> index_vector(const py::array& a, const char* name) {
    const I64 v = as_index(a, name);
    require_1d(v, name);
    return std::vector<Index>(v.data(), v.data() + v.shape(0));
}

// Blocks between any pairs of layers, as the *_blocks functions take them
// (sizes, src, dst: int64; blocks: float64), validated once; the graph
// borrows the arrays held next to it.
struct Blocks {
    Layers ls;
    netmod::LayeredGraph graph;
};

Blocks make_blocks(const py::array& sizes, const py::array& src, const py::array& dst,
                   const std::vector<py::array>& blocks) {
    Layers ls = make_layers(blocks, "blocks");
    netmod::LayeredGraph g(index_vector(sizes, "sizes"), index_vector(src, "src"), index_vector(dst, "dst"),
                           ls.views);
    return Blocks{std::move(ls), std::move(g)};
}

const Index* checked_labels(const I64& labels, Index n, Index& k) {
    if (!labels) throw py::type_error("labels must be an integer array");
    require_1d(labels, "labels");
    if (labels.shape(0) != n)
        throw std::invalid_argument("labels must have one entry per node (" + std::to_string(n) +
                                    "), got " + std::to_string(labels.shape(0)));
    const Index* p = labels.data();
    k = 0;
    for (Index i = 0; i < n; ++i) {
        if (p[i] < -1) throw std::invalid_argument("labels must be >= -1, got " + std::to_string(p[i]));
        if (p[i] + 1 > k) k = p[i] + 1;
    }
    if (k > n) throw std::invalid_argument("labels must be < the number of nodes; compact them first");
    return p;
}

netmod::SpectralOptions make_options(Index n_clusters, bool cluster, int n_init, double tol,
                                     std::uint64_t seed, int n_threads, int block_size,
                                     int max_basis, int max_restarts) {
    netmod::SpectralOptions o;
    o.n_clusters = n_clusters;
    o.cluster = cluster;
    o.lanczos.tol = tol;
    o.lanczos.block_size = block_size;
    o.lanczos.max_basis = max_basis;
    o.lanczos.max_restarts = max_restarts;
    o.lanczos.seed = netmod::derive_seed(seed, 0xE16E);
    o.kmeans.n_init = n_init;
    o.kmeans.seed = netmod::derive_seed(seed, 0xC1u);
    o.n_threads = n_threads;
    if (n_init < 1) throw std::invalid_argument("n_init must be >= 1, got " + std::to_string(n_init));
    if (!(tol > 0.0)) throw std::invalid_argument("tol must be > 0");
    return o;
}

template <class G>
py::dict run_spectral(const G& g, const netmod::SpectralOptions& o) {
    netmod::SpectralResult r;
    {
        py::gil_scoped_release release;
        r = netmod::spectral(g, o);
    }
    const Index n = g.n_nodes(), k = o.n_clusters;
    py::array_t<std::int64_t> labels(r.labels.size());
    if (!r.labels.empty())
        std::memcpy(labels.mutable_data(), r.labels.data(), r.labels.size() * sizeof(Index));
    py::array_t<double> eig(k);
    std::memcpy(eig.mutable_data(), r.eigenvalues.data(), k * sizeof(double));
    py::array_t<double> vec({n, k});
    auto v = vec.mutable_unchecked<2>();
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < k; ++j) v(i, j) = r.vectors(i, j);
    py::array_t<bool> kept(n);
    auto kp = kept.mutable_unchecked<1>();
    for (Index i = 0; i < n; ++i) kp(i) = r.kept[i] != 0;
    py::dict d;
    d["labels"] = labels;
    d["eigenvalues"] = eig;
    d["vectors"] = vec;
    d["kept"] = kept;
    d["ncut"] = r.ncut;
    d["inertia"] = r.inertia;
    d["n_components"] = r.n_components;
    d["n_matvec"] = r.n_matvec;
    d["n_restarts"] = r.n_restarts;
    d["max_residual"] = r.max_residual;
    d["solver"] = r.solver;
    return d;
}

template <class G>
py::dict run_sweep(const G& g, const std::vector<Index>& ks, const netmod::SpectralOptions& o, Index n_eig) {
    netmod::SweepResult r;
    {
        py::gil_scoped_release release;
        r = netmod::spectral_sweep(g, ks, o, n_eig);
    }
    const Index n = g.n_nodes(), nk = static_cast<Index>(ks.size());
    py::array_t<std::int64_t> labels({nk, n});
    for (Index j = 0; j < nk; ++j)
        std::memcpy(labels.mutable_data() + j * n, r.labels[j].data(), n * sizeof(Index));
    py::array_t<double> eig(r.eigenvalues.size());
    std::memcpy(eig.mutable_data(), r.eigenvalues.data(), r.eigenvalues.size() * sizeof(double));
    py::dict d;
    d["labels"] = labels;
    d["eigenvalues"] = eig;
    d["ncut"] = py::array_t<double>(r.ncut.size(), r.ncut.data());
    d["inertia"] = py::array_t<double>(r.inertia.size(), r.inertia.data());
    d["n_components"] = r.n_components;
    d["n_matvec"] = r.n_matvec;
    d["n_restarts"] = r.n_restarts;
    d["max_residual"] = r.max_residual;
    d["solver"] = r.solver;
    return d;
}

std::vector<Index> checked_ks(const py::array& ks_in) {
    std::vector<Index> ks = index_vector(ks_in, "ks");
    if (ks.empty()) throw std::invalid_argument("ks must not be empty");
    return ks;
}

// CPU time the calling thread has used, in seconds (NaN where unsupported).
double thread_cpu_seconds() {
#ifdef CLOCK_THREAD_CPUTIME_ID
    timespec ts{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
#endif
    return std::numeric_limits<double>::quiet_NaN();
}

void check_pool_threads(int n_threads) {
    if (n_threads < 1)
        throw std::invalid_argument("n_threads must be >= 1, got " + std::to_string(n_threads));
}

py::array_t<std::int64_t> int64_array(const std::vector<std::int64_t>& v) {
    py::array_t<std::int64_t> a(static_cast<py::ssize_t>(v.size()));
    if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(std::int64_t));
    return a;
}

py::list to_arrays(const netmod::DenseLayers& d) {
    py::list out;
    for (std::size_t b = 0; b < d.w.size(); ++b) {
        py::array_t<double> a({d.sizes[d.src[b]], d.sizes[d.dst[b]]});
        if (!d.w[b].empty()) std::memcpy(a.mutable_data(), d.w[b].data(), d.w[b].size() * sizeof(double));
        out.append(a);
    }
    return out;
}

// (compacted sizes, blocks) of a block graph's compaction or shuffle.
py::tuple to_sizes_and_arrays(const netmod::DenseLayers& d) {
    return py::make_tuple(int64_array(d.sizes), to_arrays(d));
}

double ncut_of(const netmod::LayeredGraph& g, const py::array& labels_in) {
    const I64 labels = as_index(labels_in, "labels");
    Index k = 0;
    const Index* lab = checked_labels(labels, g.n_nodes(), k);
    py::gil_scoped_release release;
    return g.ncut(lab, k);
}

netmod::DenseLayers compacted(const netmod::LayeredGraph& g) {
    py::gil_scoped_release release;
    return netmod::compact(g);
}

netmod::DenseLayers shuffled(const netmod::LayeredGraph& g, const std::string& method, std::uint64_t seed,
                             std::uint64_t index) {
    const netmod::ShuffleMethod meth = netmod::parse_method(method);
    py::gil_scoped_release release;
    netmod::DenseLayers d;
    const netmod::DenseLayers src = netmod::compact(g);
    netmod::Rng rng(netmod::shuffle_seed(seed, index));
    netmod::shuffle_into(src, netmod::nonzero_positions(src), d, meth, rng);
    return d;
}

py::array_t<double> null_samples_of(const netmod::LayeredGraph& g, const std::string& method,
                                    std::uint64_t seed, Index start, Index count, Index n_clusters,
                                    int n_init, double tol, int n_threads, bool observed) {
    if (start < 0 || count < 0) throw std::invalid_argument("start and count must be >= 0");
    netmod::NullOptions o;
    o.method = netmod::parse_method(method);
    o.seed = seed;
    o.start = start;
    o.count = count;
    o.n_threads = n_threads;
    o.observed = observed;
    make_options(n_clusters, true, n_init, tol, seed, 1, 0, 0, 2000);  // validates
    o.spectral_options = [=](std::uint64_t s) {
        return make_options(n_clusters, true, n_init, tol, s, 1, 0, 0, 2000);
    };
    std::vector<double> out;
    {
        py::gil_scoped_release release;
        out = netmod::null_samples(g, o);
    }
    py::array_t<double> a(out.size());
    if (!out.empty()) std::memcpy(a.mutable_data(), out.data(), out.size() * sizeof(double));
    return a;
}

}  // namespace

#ifndef NETMOD_MODULE
#define NETMOD_MODULE _core
#endif

PYBIND11_MODULE(NETMOD_MODULE, m) {
    m.doc() = "netmod's native kernel (private): n-cut, Lanczos, k-means, spectral clustering.";
#if defined(__AVX2__) && defined(__FMA__)
    m.attr("simd") = "avx2+fma";
#elif defined(__x86_64__) || defined(_M_X64)
    m.attr("simd") = "sse2";
#else
    m.attr("simd") = "baseline";
#endif
    m.def(
        "cpu_has_avx2_fma",
        []() {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
            return false;
#endif
        },
        "Whether this CPU runs the AVX2+FMA build of the kernel.");

    m.def(
        "ncut_csr",
        [](const py::array& indptr, const py::array& indices, const py::array& data,
           const py::array& labels_in) {
            const Csr c = make_csr(indptr, indices, data);
            const I64 labels = as_index(labels_in, "labels");
            Index k = 0;
            const Index* lab = checked_labels(labels, c.n, k);
            py::gil_scoped_release release;
            return c.graph().ncut(lab, k);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("labels"),
        "n-cut of a labelling (-1 = excluded, only on zero-degree nodes) of a symmetric CSR graph.");

    m.def(
        "ncut_layers",
        [](const std::vector<py::array>& weights, const py::array& labels_in) {
            const Layers ls = make_layers(weights);
            return ncut_of(netmod::LayeredGraph(ls.views), labels_in);
        },
        py::arg("weights"), py::arg("labels"),
        "n-cut of a labelling of the layered graph of (in, out) weight blocks (|w| used).");

    m.def(
        "ncut_blocks",
        [](const py::array& sizes, const py::array& src, const py::array& dst,
           const std::vector<py::array>& blocks, const py::array& labels_in) {
            const Blocks b = make_blocks(sizes, src, dst, blocks);
            return ncut_of(b.graph, labels_in);
        },
        py::arg("sizes"), py::arg("src"), py::arg("dst"), py::arg("blocks"), py::arg("labels"),
        "n-cut of a labelling of the graph of weight blocks between layer pairs src[b] < dst[b]\n"
        "(block b of shape (sizes[src[b]], sizes[dst[b]]), |w| used).");

    m.def(
        "spectral_csr",
        [](const py::array& indptr, const py::array& indices, const py::array& data,
           Index n_clusters, bool cluster, int n_init, double tol, std::uint64_t seed,
           int n_threads, int block_size, int max_basis, int max_restarts) {
            const Csr c = make_csr(indptr, indices, data);
            const auto o = make_options(n_clusters, cluster, n_init, tol, seed, n_threads,
                                        block_size, max_basis, max_restarts);
            return run_spectral(c.graph(), o);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::kw_only(),
        py::arg("n_clusters"), py::arg("cluster") = true, py::arg("n_init") = 10,
        py::arg("tol") = 1e-8, py::arg("seed") = 0, py::arg("n_threads") = 1,
        py::arg("block_size") = 0, py::arg("max_basis") = 0, py::arg("max_restarts") = 2000,
        "Spectral clustering of a symmetric CSR graph; returns a dict of arrays.");

    m.def(
        "spectral_layers",
        [](const std::vector<py::array>& weights, Index n_clusters, bool cluster, int n_init,
           double tol, std::uint64_t seed, int n_threads, int block_size, int max_basis,
           int max_restarts) {
            const Layers ls = make_layers(weights);
            const netmod::LayeredGraph g(ls.views);
            const auto o = make_options(n_clusters, cluster, n_init, tol, seed, n_threads,
                                        block_size, max_basis, max_restarts);
            return run_spectral(g, o);
        },
        py::arg("weights"), py::kw_only(), py::arg("n_clusters"), py::arg("cluster") = true,
        py::arg("n_init") = 10, py::arg("tol") = 1e-8, py::arg("seed") = 0,
        py::arg("n_threads") = 1, py::arg("block_size") = 0, py::arg("max_basis") = 0,
        py::arg("max_restarts") = 2000,
        "Spectral clustering of the layered graph of (in, out) weight blocks (|w| used).");

    m.def(
        "spectral_blocks",
        [](const py::array& sizes, const py::array& src, const py::array& dst,
           const std::vector<py::array>& blocks, Index n_clusters, bool cluster, int n_init, double tol,
           std::uint64_t seed, int n_threads, int block_size, int max_basis, int max_restarts) {
            const Blocks b = make_blocks(sizes, src, dst, blocks);
            const auto o = make_options(n_clusters, cluster, n_init, tol, seed, n_threads, block_size,
                                        max_basis, max_restarts);
            return run_spectral(b.graph, o);
        },
        py::arg("sizes"), py::arg("src"), py::arg("dst"), py::arg("blocks"), py::kw_only(),
        py::arg("n_clusters"), py::arg("cluster") = true, py::arg("n_init") = 10, py::arg("tol") = 1e-8,
        py::arg("seed") = 0, py::arg("n_threads") = 1, py::arg("block_size") = 0, py::arg("max_basis") = 0,
        py::arg("max_restarts") = 2000,
        "Spectral clustering of the graph of weight blocks between layer pairs (see ncut_blocks).");

    m.def(
        "kmeans_rows",
        [](const py::array& X_in, Index n_clusters, int n_init, int max_iter, std::uint64_t seed,
           bool screen, int n_threads) {
            const F64 X = finite_rows(X_in, "X");
            const Index n = X.shape(0), d = X.shape(1);
            if (max_iter < 1) throw std::invalid_argument("max_iter must be >= 1");
            netmod::KMeansOptions o;
            o.n_init = n_init;
            o.max_iter = max_iter;
            o.seed = seed;
            o.screen = screen;
            o.n_threads = n_threads;
            netmod::KMeansResult r;
            {
                py::gil_scoped_release release;
                const Eigen::Map<const netmod::detail::KRowMat> M(X.data(), n, d);
                r = netmod::kmeans(netmod::detail::KRowMat(M), n_clusters, o);
            }
            py::array_t<std::int64_t> labels(static_cast<py::ssize_t>(r.labels.size()));
            if (!r.labels.empty())
                std::memcpy(labels.mutable_data(), r.labels.data(), r.labels.size() * sizeof(std::int64_t));
            py::dict out;
            out["labels"] = labels;
            out["inertia"] = r.inertia;
            out["n_iter"] = r.n_iter;
            out["n_redone"] = r.n_redone;
            return out;
        },
        py::arg("X"), py::kw_only(), py::arg("n_clusters"), py::arg("n_init") = 10,
        py::arg("max_iter") = 300, py::arg("seed") = 0, py::arg("screen") = true,
        py::arg("n_threads") = 1,
        "k-means of the rows of X (k-means++ seeding, n_init restarts, best inertia), as spectral\n"
        "clustering runs it on its embedding; screen=False turns off the float screen of the\n"
        "assignments (same labels, for testing). Returns labels, inertia, n_iter, n_redone.");

    m.def(
        "assign_rows",
        [](const py::array& X_in, const py::array& C_in, bool screen) {
            const F64 X = finite_rows(X_in, "X"), C = finite_rows(C_in, "centres");
            const Index n = X.shape(0), k = C.shape(0), d = X.shape(1);
            if (C.shape(1) != d)
                throw std::invalid_argument("X and centres must have the same number of columns");
            double top = 0.0, ctop = 0.0;
            for (Index e = 0; e < n * d; ++e) top = std::max(top, std::fabs(X.data()[e]));
            for (Index e = 0; e < k * d; ++e) ctop = std::max(ctop, std::fabs(C.data()[e]));
            if (ctop > top) throw std::invalid_argument("centres must lie within the largest |entry| of X");
            std::vector<std::int64_t> labels;
            std::int64_t redone = 0;
            {
                py::gil_scoped_release release;
                const netmod::detail::KRowMat Xm = Eigen::Map<const netmod::detail::KRowMat>(X.data(), n, d);
                const netmod::detail::KRowMat Cm = Eigen::Map<const netmod::detail::KRowMat>(C.data(), k, d);
                redone = netmod::detail::assign_rows(Xm, Cm, screen, labels);
            }
            py::array_t<std::int64_t> out(static_cast<py::ssize_t>(n));
            std::memcpy(out.mutable_data(), labels.data(), labels.size() * sizeof(std::int64_t));
            return py::make_tuple(out, redone);
        },
        py::arg("X"), py::arg("centres"), py::kw_only(), py::arg("screen") = true,
        "One k-means assignment step (nearest centre, ties to the lowest index), with or without\n"
        "the float screen; returns (labels, rows redone in double). For tests.");

    m.def(
        "blocks_match_edges",
        [](const std::vector<py::array>& blocks, const py::array& row_offsets_in,
           const py::array& col_offsets_in, const py::array& source_in, const py::array& target_in,
           const py::list& edge_weights) {
            // Reads the edge weights straight from the list (no NumPy copy of it): the
            // check runs on every call with a graph that carries its blocks.
            const Layers ls = make_layers(blocks);
            const I64 row_off = as_index(row_offsets_in, "row_offsets");
            const I64 col_off = as_index(col_offsets_in, "col_offsets");
            const I64 source = as_index(source_in, "source"), target = as_index(target_in, "target");
            for (const auto* a : {&row_off, &col_off, &source, &target})
                require_1d(*a, "offsets and endpoints");
            const Index nb = static_cast<Index>(ls.views.size());
            if (row_off.shape(0) != nb || col_off.shape(0) != nb)
                throw std::invalid_argument("row_offsets and col_offsets must have one entry per block");
            const Index m = static_cast<Index>(PyList_GET_SIZE(edge_weights.ptr()));
            if (source.shape(0) != m || target.shape(0) != m) return false;
            const std::int64_t *src = source.data(), *dst = target.data();
            PyObject** items = PySequence_Fast_ITEMS(edge_weights.ptr());
            Index e = 0;
            for (Index b = 0; b < nb; ++b) {
                const netmod::LayerView& v = ls.views[b];
                const Index r0 = row_off.data()[b], c0 = col_off.data()[b];
                for (Index i = 0; i < v.rows; ++i) {
                    const double* row = v.data + i * v.cols;
                    for (Index j = 0; j < v.cols; ++j) {
                        const double w = row[j];
                        if (w == 0.0) continue;
                        if (e == m) return false;
                        const Index u = r0 + i, t = c0 + j;
                        if (!((src[e] == u && dst[e] == t) || (src[e] == t && dst[e] == u))) return false;
                        PyObject* item = items[e];
                        double x;
                        if (PyFloat_Check(item)) {
                            x = PyFloat_AS_DOUBLE(item);
                        } else if (PyLong_Check(item)) {
                            x = PyLong_AsDouble(item);
                            if (x == -1.0 && PyErr_Occurred()) {
                                PyErr_Clear();
                                return false;
                            }
                        } else {
                            return false;
                        }
                        if (x != std::fabs(w)) return false;
                        ++e;
                    }
                }
            }
            return e == m;
        },
        py::arg("blocks"), py::arg("row_offsets"), py::arg("col_offsets"), py::arg("source"),
        py::arg("target"), py::arg("edge_weights"),
        "Whether a graph's edges are exactly the non-zero entries of its weight blocks: edge e\n"
        "(in block order, row-major) joins row_offsets[b] + i and col_offsets[b] + j, in either\n"
        "direction, with weight |blocks[b][i, j]| (a Python float or int, compared exactly).");

    m.def("replicate_seed", &netmod::replicate_seed, py::arg("seed"), py::arg("index"),
          "Clustering seed of null replicate `index`.");

    m.def(
        "compact_layers",
        [](const std::vector<py::array>& weights) {
            const Layers ls = make_layers(weights);
            return to_arrays(compacted(netmod::LayeredGraph(ls.views)));
        },
        py::arg("weights"), "The network without its zero-degree units, as (in, out) matrices.");

    m.def(
        "compact_blocks",
        [](const py::array& sizes, const py::array& src, const py::array& dst,
           const std::vector<py::array>& blocks) {
            const Blocks b = make_blocks(sizes, src, dst, blocks);
            return to_sizes_and_arrays(compacted(b.graph));
        },
        py::arg("sizes"), py::arg("src"), py::arg("dst"), py::arg("blocks"),
        "The block graph without its zero-degree units: (sizes, blocks), the same pairs; a layer\n"
        "left without units keeps its blocks, with 0 rows or columns.");

    m.def(
        "shuffled_layers",
        [](const std::vector<py::array>& weights, const std::string& method, std::uint64_t seed,
           std::uint64_t index) {
            const Layers ls = make_layers(weights);
            return to_arrays(shuffled(netmod::LayeredGraph(ls.views), method, seed, index));
        },
        py::arg("weights"), py::kw_only(), py::arg("method"), py::arg("seed"), py::arg("index"),
        "The compacted, shuffled weights of null replicate `index`.");

    m.def(
        "shuffled_blocks",
        [](const py::array& sizes, const py::array& src, const py::array& dst,
           const std::vector<py::array>& blocks, const std::string& method, std::uint64_t seed,
           std::uint64_t index) {
            const Blocks b = make_blocks(sizes, src, dst, blocks);
            return to_sizes_and_arrays(shuffled(b.graph, method, seed, index));
        },
        py::arg("sizes"), py::arg("src"), py::arg("dst"), py::arg("blocks"), py::kw_only(), py::arg("method"),
        py::arg("seed"), py::arg("index"),
        "(sizes, blocks) of null replicate `index` of a block graph: compacted, then shuffled per block.");

    m.def(
        "null_samples",
        [](const std::vector<py::array>& weights, const std::string& method, std::uint64_t seed,
           Index start, Index count, Index n_clusters, int n_init, double tol, int n_threads,
           bool observed) {
            const Layers ls = make_layers(weights);
            return null_samples_of(netmod::LayeredGraph(ls.views), method, seed, start, count, n_clusters,
                                   n_init, tol, n_threads, observed);
        },
        py::arg("weights"), py::kw_only(), py::arg("method"), py::arg("seed"), py::arg("start"),
        py::arg("count"), py::arg("n_clusters"), py::arg("n_init") = 10, py::arg("tol") = 1e-8,
        py::arg("n_threads") = 1, py::arg("observed") = false,
        "n-cuts of null replicates start..start+count-1 (shuffle, drop isolated units, cluster);\n"
        "with observed=True the n-cut of the unshuffled network (clustered with `seed`) comes first.");

    m.def(
        "null_samples_blocks",
        [](const py::array& sizes, const py::array& src, const py::array& dst,
           const std::vector<py::array>& blocks, const std::string& method, std::uint64_t seed, Index start,
           Index count, Index n_clusters, int n_init, double tol, int n_threads, bool observed) {
            const Blocks b = make_blocks(sizes, src, dst, blocks);
            return null_samples_of(b.graph, method, seed, start, count, n_clusters, n_init, tol, n_threads,
                                   observed);
        },
        py::arg("sizes"), py::arg("src"), py::arg("dst"), py::arg("blocks"), py::kw_only(), py::arg("method"),
        py::arg("seed"), py::arg("start"), py::arg("count"), py::arg("n_clusters"), py::arg("n_init") = 10,
        py::arg("tol") = 1e-8, py::arg("n_threads") = 1, py::arg("observed") = false,
        "null_samples of a block graph (compacted, shuffled per block, clustered).");

    m.def(
        "sweep_csr",
        [](const py::array& indptr, const py::array& indices, const py::array& data, const py::array& ks,
           int n_init, double tol, std::uint64_t seed, int n_threads, Index n_eigenvalues) {
            const Csr c = make_csr(indptr, indices, data);
            const std::vector<Index> k = checked_ks(ks);
            const auto o = make_options(2, true, n_init, tol, seed, n_threads, 0, 0, 2000);
            return run_sweep(c.graph(), k, o, n_eigenvalues);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::kw_only(), py::arg("ks"),
        py::arg("n_init") = 10, py::arg("tol") = 1e-8, py::arg("seed") = 0, py::arg("n_threads") = 1,
        py::arg("n_eigenvalues") = 0,
        "Spectral partitions of a CSR graph at every k of ks from one eigensolve for max(ks):\n"
        "labels (len(ks), n), ncut and inertia per k, the max(n_eigenvalues, max(ks)) smallest\n"
        "eigenvalues.");

    m.def(
        "sweep_layers",
        [](const std::vector<py::array>& weights, const py::array& ks, int n_init, double tol,
           std::uint64_t seed, int n_threads, Index n_eigenvalues) {
            const Layers ls = make_layers(weights);
            const netmod::LayeredGraph g(ls.views);
            const std::vector<Index> k = checked_ks(ks);
            const auto o = make_options(2, true, n_init, tol, seed, n_threads, 0, 0, 2000);
            return run_sweep(g, k, o, n_eigenvalues);
        },
        py::arg("weights"), py::kw_only(), py::arg("ks"), py::arg("n_init") = 10, py::arg("tol") = 1e-8,
        py::arg("seed") = 0, py::arg("n_threads") = 1, py::arg("n_eigenvalues") = 0, "sweep_csr of a layered graph.");

    m.def(
        "sweep_blocks",
        [](const py::array& sizes, const py::array& src, const py::array& dst,
           const std::vector<py::array>& blocks, const py::array& ks, int n_init, double tol,
           std::uint64_t seed, int n_threads, Index n_eigenvalues) {
            const Blocks b = make_blocks(sizes, src, dst, blocks);
            const std::vector<Index> k = checked_ks(ks);
            const auto o = make_options(2, true, n_init, tol, seed, n_threads, 0, 0, 2000);
            return run_sweep(b.graph, k, o, n_eigenvalues);
        },
        py::arg("sizes"), py::arg("src"), py::arg("dst"), py::arg("blocks"), py::kw_only(), py::arg("ks"),
        py::arg("n_init") = 10, py::arg("tol") = 1e-8, py::arg("seed") = 0, py::arg("n_threads") = 1,
        py::arg("n_eigenvalues") = 0, "sweep_csr of a block graph.");

    m.def(
        "edge_null_samples",
        [](const py::array& indptr, const py::array& indices, const py::array& data, std::uint64_t seed,
           Index start, Index count, Index n_clusters, int n_init, double tol, int n_threads, bool observed) {
            const Csr c = make_csr(indptr, indices, data);
            if (start < 0 || count < 0) throw std::invalid_argument("start and count must be >= 0");
            make_options(n_clusters, true, n_init, tol, seed, 1, 0, 0, 2000);  // validates
            netmod::EdgeNullOptions o;
            o.seed = seed;
            o.start = start;
            o.count = count;
            o.n_threads = n_threads;
            o.observed = observed;
            o.spectral_options = [=](std::uint64_t s) {
                return make_options(n_clusters, true, n_init, tol, s, 1, 0, 0, 2000);
            };
            std::vector<double> out;
            {
                py::gil_scoped_release release;
                const netmod::CsrGraph g = c.graph();
                out = netmod::edge_null_samples(g, o);
            }
            return py::array_t<double>(out.size(), out.data());
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::kw_only(), py::arg("seed"),
        py::arg("start"), py::arg("count"), py::arg("n_clusters"), py::arg("n_init") = 10,
        py::arg("tol") = 1e-8, py::arg("n_threads") = 1, py::arg("observed") = false,
        "n-cuts of edge-null replicates start..start+count-1 of a CSR graph (zero-degree nodes\n"
        "dropped, upper-triangle entries permuted, mirrored, clustered); with observed=True the\n"
        "n-cut of the graph itself (clustered with `seed`) comes first.");

    m.def(
        "edge_shuffled",
        [](const py::array& indptr, const py::array& indices, const py::array& data, std::uint64_t seed,
           std::uint64_t index) {
            const Csr c = make_csr(indptr, indices, data);
            netmod::UpperTriangle t;
            std::vector<double> v;
            {
                py::gil_scoped_release release;
                t = netmod::compact_upper(c.graph());
                v = netmod::edge_shuffled(t, seed, index);
            }
            return py::make_tuple(int64_array(t.node_of), py::array_t<double>(t.values.size(), t.values.data()),
                                  py::array_t<double>(v.size(), v.data()));
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::kw_only(), py::arg("seed"), py::arg("index"),
        "(kept nodes, upper triangle of the compacted graph row by row, that triangle as replicate\n"
        "`index` of the edge null permutes it).");

    m.def(
        "_pool_idle_cpu_seconds",
        [](int n_threads, double idle_seconds) {
            check_pool_threads(n_threads);
            if (!(idle_seconds >= 0.0 && idle_seconds <= 60.0))
                throw std::invalid_argument("idle_seconds must be in [0, 60], got " +
                                            std::to_string(idle_seconds));
            py::gil_scoped_release release;
            netmod::ThreadPool pool(n_threads);
            std::vector<double> before(pool.size()), after(pool.size());
            pool.run([&](int t, int) { before[t] = thread_cpu_seconds(); });
            std::this_thread::sleep_for(std::chrono::duration<double>(idle_seconds));
            pool.run([&](int t, int) { after[t] = thread_cpu_seconds(); });
            double used = 0.0;
            for (int t = 1; t < pool.size(); ++t) used += after[t] - before[t];
            return used;
        },
        py::arg("n_threads"), py::arg("idle_seconds"),
        "CPU seconds the n_threads - 1 workers of a pool used, together, while the pool sat idle\n"
        "for idle_seconds between two jobs (NaN without per-thread CPU clocks). For tests.");

    m.def(
        "_pool_run",
        [](int n_threads, Index rounds, int fail_member) {
            check_pool_threads(n_threads);
            std::vector<std::int64_t> count(static_cast<std::size_t>(n_threads), 0);
            {
                py::gil_scoped_release release;
                netmod::ThreadPool pool(n_threads);
                for (Index r = 0; r < rounds; ++r) {
                    pool.run([&](int t, int n) {
                        if (n != n_threads)
                            throw std::runtime_error("run: member got n = " + std::to_string(n));
                        ++count[static_cast<std::size_t>(t)];
                        if (t == fail_member && r == rounds - 1)
                            throw std::invalid_argument("member " + std::to_string(t) + " failed");
                    });
                }
            }
            return int64_array(count);
        },
        py::arg("n_threads"), py::arg("rounds"), py::arg("fail_member") = -1,
        "Runs `rounds` jobs on one pool; returns how often each member ran. Member fail_member\n"
        "throws ValueError in the last round. For tests.");

    m.def(
        "_pool_for_each",
        [](int n_threads, Index n_tasks, Index fail_at, Index nested, double task_seconds) {
            check_pool_threads(n_threads);
            if (n_tasks < 0 || nested < 0)
                throw std::invalid_argument("n_tasks and nested must be >= 0");
            std::vector<std::int64_t> worker(static_cast<std::size_t>(n_tasks), -1);
            std::vector<std::int64_t> inner(static_cast<std::size_t>(n_tasks * nested), 0);
            std::string error;
            std::atomic<Index> after{0};
            {
                py::gil_scoped_release release;
                netmod::ThreadPool pool(n_threads);
                try {
                    pool.for_each(n_tasks, [&](std::int64_t i, int w) {
                        const auto u = static_cast<std::size_t>(i);
                        if (worker[u] != -1) throw std::runtime_error("task run twice");
                        worker[u] = w;
                        if (i == fail_at)
                            throw std::invalid_argument("task " + std::to_string(i) + " failed");
                        if (task_seconds > 0.0)
                            std::this_thread::sleep_for(std::chrono::duration<double>(task_seconds));
                        // The same pool from inside one of its jobs: runs in this thread.
                        pool.for_each(nested, [&](std::int64_t j, int) {
                            ++inner[static_cast<std::size_t>(i * nested + j)];
                        });
                    });
                } catch (const std::exception& e) {
                    error = e.what();
                }
                pool.for_each(n_tasks, [&](std::int64_t, int) { after.fetch_add(1); });
            }
            py::dict out;
            out["worker"] = int64_array(worker);
            out["inner"] = int64_array(inner);
            out["error"] = error.empty() ? py::object(py::none()) : py::object(py::str(error));
            out["after"] = after.load();
            return out;
        },
        py::arg("n_threads"), py::arg("n_tasks"), py::kw_only(), py::arg("fail_at") = -1,
        py::arg("nested") = 0, py::arg("task_seconds") = 0.0,
        "for_each over n_tasks on one pool (task fail_at throws): the worker index of each task\n"
        "(-1: not run), the counts of the `nested` inner tasks each ran on the same pool, the\n"
        "message of the exception the caller caught, and how many tasks a second for_each on\n"
        "the same pool then ran. For tests.");
}
