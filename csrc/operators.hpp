// operators.hpp — neuron graphs and their normalised adjacency operators.
//
// Contract
// - CsrGraph: n nodes, CSR arrays (int64 indptr[n+1], int64 indices[nnz],
//   float64 data[nnz]) of a symmetric adjacency with non-negative finite
//   weights. The arrays are borrowed, not copied: they must outlive the object.
//   Symmetry is the caller's job (the Python layer checks it); the index ranges,
//   signs and finiteness are checked here (std::invalid_argument).
// - LayeredGraph: layers of sizes n_0, ..., n_{L-1} (>= 0 each) and dense
//   row-major signed weight blocks W_b, each between a pair of layers
//   src_b < dst_b (pairs unique), of shape (n_src, n_dst); the edge weight is
//   |W_b[i, j]|. Node order: layer 0 first, units in index order. The chain
//   of an MLP is the pairs (l, l + 1) in order (the one-argument
//   constructor); a residual skip or a CNN's extra blocks are further pairs.
//   Blocks are visited in their given order everywhere (degrees, edges,
//   n-cut, operator products), so every result is a fixed function of the
//   input. Borrowed as above. Bad shapes, pairs or non-finite weights throw
//   std::invalid_argument naming the block.
// - The layer graph (layers = vertices, blocks = edges) is 2-coloured by a
//   breadth-first search in layer order (colour 0 first in each component);
//   when that succeeds the neuron graph is bipartite between the two colours
//   (a chain: colour = l % 2) and the spectral solver may work on B^T B
//   (SideSquareOperator); an odd cycle of layers (blocks 0-1, 1-2, 0-2) has
//   no colouring, and only the full operator is used.
// - Both give the weighted degree of every node, visit every undirected edge
//   once (for_each_edge), compute the n-cut of a labelling in one O(nnz) pass,
//   and build the operator N = D^-1/2 A D^-1/2 restricted to the nodes with
//   non-zero degree (Compaction), as an `Operator` applying N to an n x p block.
// - The layered operator keeps the block structure: a dense block is a GEMM,
//   a sparse one (density below kDenseThreshold after compaction) a CSR
//   product; both directions (W and W^T) come from the same storage. Block
//   b's forward half writes the rows of layer src_b, its backward half those
//   of layer dst_b; several blocks may add into one layer, always in block
//   order.
// Complexity: construction O(nnz) (the layer colouring O(layers + blocks));
// apply O(nnz * p).
// Thread safety: all methods are const after construction; `apply` may be
// called concurrently on one operator with different output blocks. A
// LayeredOperator given a ThreadPool (set_pool) splits each application's
// output rows over the pool's members; concurrent applications then share
// the pool, and one that finds it busy computes its row blocks in its own
// thread (parallel.hpp), with the same result. Member t of n owns rows
// [r t / n, r (t + 1) / n) of every layer of r rows and runs every block's
// products into them in block order, so no two members write one row and a
// row's value does not depend on n.
#pragma once

#include <Eigen/Core>
#include "kernels.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace netmod {

using Index = std::int64_t;
using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Fraction of non-zeros above which a layer block is stored dense.
constexpr double kDenseThreshold = 0.25;

// The nodes with non-zero degree, renumbered 0..n_kept-1 in node order.
struct Compaction {
    std::vector<Index> compact_of;  // node -> compact index, or -1
    std::vector<Index> node_of;     // compact index -> node
    std::vector<double> degree;     // degree of every node (all n)
    std::vector<double> inv_sqrt;   // 1/sqrt(degree) per compact node

    explicit Compaction(std::vector<double> deg) : degree(std::move(deg)) {
        const Index n = static_cast<Index>(degree.size());
        compact_of.assign(n, -1);
        for (Index i = 0; i < n; ++i) {
            if (!std::isfinite(degree[i]))
                throw std::invalid_argument("weights: the weighted degree of node " + std::to_string(i) +
                                            " overflows float64; rescale the weights");
            if (degree[i] > 0.0) {
                compact_of[i] = static_cast<Index>(node_of.size());
                node_of.push_back(i);
                inv_sqrt.push_back(1.0 / std::sqrt(degree[i]));
            }
        }
    }
    Index size() const { return static_cast<Index>(node_of.size()); }
};

class Operator {
public:
    virtual ~Operator() = default;
    virtual Index dim() const = 0;
    // Y = N X for a row-major n_kept x p block X.
    virtual void apply(const RowMat& X, RowMat& Y) const = 0;
};

class CsrOperator final : public Operator {
public:
    CsrOperator(std::vector<Index> indptr, std::vector<Index> indices, std::vector<double> val)
        : indptr_(std::move(indptr)), indices_(std::move(indices)), val_(std::move(val)) {}
    Index dim() const override { return static_cast<Index>(indptr_.size()) - 1; }
    void apply(const RowMat& X, RowMat& Y) const override {
        Y.setZero(X.rows(), X.cols());
        kernels::csr_rows(indptr_.data(), indices_.data(), val_.data(), dim(), X.data(), Y.data(),
                          X.cols());
    }

private:
    std::vector<Index> indptr_, indices_;
    std::vector<double> val_;
};

class CsrGraph {
public:
    CsrGraph(Index n, const Index* indptr, const Index* indices, const double* data, Index nnz)
        : n_(n), indptr_(indptr), indices_(indices), data_(data) {
        if (n < 0) throw std::invalid_argument("indptr: negative number of nodes");
        if (indptr[0] != 0 || indptr[n] != nnz)
            throw std::invalid_argument("indptr must start at 0 and end at nnz (" +
                                        std::to_string(nnz) + ")");
        for (Index i = 0; i < n; ++i) {
            if (indptr[i + 1] < indptr[i])
                throw std::invalid_argument("indptr must be non-decreasing");
        }
        for (Index e = 0; e < nnz; ++e) {
            if (indices[e] < 0 || indices[e] >= n)
                throw std::invalid_argument("indices: column index " + std::to_string(indices[e]) +
                                            " out of range [0, " + std::to_string(n) + ")");
            if (!(data[e] >= 0.0) || !std::isfinite(data[e]))
                throw std::invalid_argument("data: weights must be finite and non-negative");
        }
    }

    Index n_nodes() const { return n_; }

    std::vector<double> degrees() const {
        std::vector<double> d(n_, 0.0);
        for (Index i = 0; i < n_; ++i)
            for (Index e = indptr_[i]; e < indptr_[i + 1]; ++e) d[i] += data_[e];
        return d;
    }

    // Each undirected edge once (i <= j); the symmetric twin is skipped.
    template <class F>
    void for_each_edge(F&& f) const {
        for (Index i = 0; i < n_; ++i)
            for (Index e = indptr_[i]; e < indptr_[i + 1]; ++e)
                if (indices_[e] >= i && data_[e] != 0.0) f(i, indices_[e], data_[e]);
    }

    // labels in [-1, k); every stored entry is one direction of an edge, so
    // each end accounts for its own side.
    double ncut(const Index* labels, Index k) const {
        std::vector<double> cut(k, 0.0), vol(k, 0.0);
        for (Index i = 0; i < n_; ++i) {
            const Index a = labels[i];
            for (Index e = indptr_[i]; e < indptr_[i + 1]; ++e) {
                const double w = data_[e];
                if (w == 0.0) continue;
                if (a < 0)
                    throw std::invalid_argument("labels: -1 on node " + std::to_string(i) +
                                                " which has edges");
                vol[a] += w;
                if (labels[indices_[e]] != a) cut[a] += w;
            }
        }
        return sum_ratios(cut, vol);
    }

    std::unique_ptr<Operator> normalized(const Compaction& c) const {
        std::vector<Index> indptr(1, 0), indices;
        std::vector<double> val;
        for (Index i = 0; i < n_; ++i) {
            const Index ci = c.compact_of[i];
            if (ci < 0) continue;
            for (Index e = indptr_[i]; e < indptr_[i + 1]; ++e) {
                const Index cj = c.compact_of[indices_[e]];
                if (data_[e] == 0.0 || cj < 0) continue;
                indices.push_back(cj);
                val.push_back(data_[e] * c.inv_sqrt[ci] * c.inv_sqrt[cj]);
            }
            indptr.push_back(static_cast<Index>(indices.size()));
        }
        return std::make_unique<CsrOperator>(std::move(indptr), std::move(indices), std::move(val));
    }

    static double sum_ratios(const std::vector<double>& cut, const std::vector<double>& vol) {
        double total = 0.0;
        for (std::size_t c = 0; c < cut.size(); ++c) {
            if (!std::isfinite(vol[c]))
                throw std::invalid_argument("weights: the volume of cluster " + std::to_string(c) +
                                            " overflows float64; rescale the weights");
            if (vol[c] > 0.0) total += cut[c] / vol[c];
        }
        return total;
    }

private:
    Index n_;
    const Index* indptr_;
    const Index* indices_;
    const double* data_;
};

struct LayerView {
    Index rows;
    Index cols;
    const double* data;  // row-major rows x cols, signed
};

class LayeredOperator final : public Operator {
public:
    // One weight block between two layers, already scaled by D^-1/2 on both
    // sides, stored twice (B and B^T) so that both directions run the row
    // kernel, which is about twice as fast as a scatter; each half dense
    // row-major, or CSR when sparse.
    struct Half {
        bool dense = true;
        Index rows = 0, cols = 0;
        std::vector<double> d;  // dense row-major
        std::vector<Index> indptr, indices;
        std::vector<double> val;

        // Output rows [r0, r1) of Y += H X.
        void product(const double* X, double* Y, Index p, Index r0, Index r1) const {
            if (r1 <= r0) return;
            if (dense)
                kernels::dense_rows(d.data() + r0 * cols, r1 - r0, cols, X, Y + r0 * p, p);
            else
                kernels::csr_rows(indptr.data() + r0, indices.data(), val.data(), r1 - r0, X,
                                  Y + r0 * p, p);
        }
    };
    struct Block {
        Half fwd;  // rows = layer src, cols = layer dst
        Half bwd;  // the transpose
    };
    LayeredOperator() = default;

    // Layout: per layer its compact offset and size (and colour, empty when
    // the layer graph is not bipartite), per block its two layers. Existing
    // block storage is kept for reuse.
    void reset(const std::vector<Index>& offsets, const std::vector<Index>& sizes,
               const std::vector<Index>& src, const std::vector<Index>& dst,
               const std::vector<int>& colour) {
        off_ = offsets;
        size_ = sizes;
        src_ = src;
        dst_ = dst;
        colour_ = colour;
        blocks_.resize(src_.size());
    }
    Block& block(std::size_t b) { return blocks_[b]; }

    Index dim() const override { return off_.back() + size_.back(); }
    // Stored entries of one direction: the cost of an application per vector.
    Index work() const {
        Index w = 0;
        for (const Block& b : blocks_) w += b.fwd.dense ? b.fwd.rows * b.fwd.cols : static_cast<Index>(b.fwd.val.size());
        return w;
    }
    Index n_layers() const { return static_cast<Index>(size_.size()); }
    Index offset(Index l) const { return off_[l]; }
    Index size(Index l) const { return size_[l]; }
    // Whether every block joins layers of different colours (see the contract).
    bool bipartite() const { return !colour_.empty(); }
    int colour(Index l) const { return colour_[l]; }

    // Optional thread pool: each application is then split by output rows
    // into one block per member (rows are computed the same either way).
    void set_pool(ThreadPool* pool) { pool_ = pool; }

    void apply(const RowMat& X, RowMat& Y) const override {
        Y.setZero(X.rows(), X.cols());
        run(X, Y, -1);
    }

    // Y[layers of colour 1-from] = N X, reading X only on layers of colour
    // `from`: one half of the bipartite product, each block used once.
    // Rows of Y on layers of colour `from` are left as they are. Only for a
    // bipartite() operator (std::logic_error otherwise).
    void apply_from(int from, const RowMat& X, RowMat& Y) const {
        if (!bipartite()) throw std::logic_error("apply_from: the layer graph is not bipartite");
        for (std::size_t l = 0; l < size_.size(); ++l)
            if (colour_[l] != from) Y.middleRows(off_[l], size_[l]).setZero();
        run(X, Y, from);
    }

private:
    // from = -1: both directions; 0/1: only products reading that colour.
    void run(const RowMat& X, RowMat& Y, int from) const {
        const Index p = X.cols();
        auto part = [&](int t, int n) {
            for (std::size_t b = 0; b < blocks_.size(); ++b) {
                const Index s = src_[b], d = dst_[b];
                if (from < 0 || colour_[d] == from) {
                    const Index r = size_[s];
                    blocks_[b].fwd.product(X.data() + off_[d] * p, Y.data() + off_[s] * p, p,
                                           r * t / n, r * (t + 1) / n);
                }
                if (from < 0 || colour_[s] == from) {
                    const Index r = size_[d];
                    blocks_[b].bwd.product(X.data() + off_[s] * p, Y.data() + off_[d] * p, p,
                                           r * t / n, r * (t + 1) / n);
                }
            }
        };
        if (pool_ && pool_->size() > 1) pool_->run(part);
        else part(0, 1);
    }

    ThreadPool* pool_ = nullptr;

private:
    std::vector<Block> blocks_;
    std::vector<Index> off_;
    std::vector<Index> size_;
    std::vector<Index> src_, dst_;
    std::vector<int> colour_;
};

// The bipartite square B^T B of a bipartite() layered operator on the nodes
// of the layers of one colour (the "side", in layer order): N = [[0, B],
// [B^T, 0]] so N^2 restricted to a side has the squared eigenvalues of N and
// the same eigenvectors there. Its
// wanted eigenvalues are far better separated relative to the spectrum than
// N's, and its vectors are shorter.
class SideSquareOperator final : public Operator {
public:
    SideSquareOperator(const LayeredOperator& op, int side) : op_(op), side_(side) {
        for (Index l = 0; l < op.n_layers(); ++l)
            if (op.colour(l) == side) dim_ += op.size(l);
    }
    Index dim() const override { return dim_; }

    // Side vectors (dim x p) <-> full vectors (n x p), zeros off the side.
    void scatter(const RowMat& Xs, RowMat& X) const {
        X.setZero(op_.dim(), Xs.cols());
        Index r = 0;
        for (Index l = 0; l < op_.n_layers(); ++l) {
            if (op_.colour(l) != side_) continue;
            X.middleRows(op_.offset(l), op_.size(l)) = Xs.middleRows(r, op_.size(l));
            r += op_.size(l);
        }
    }
    void gather(const RowMat& X, RowMat& Xs) const {
        Xs.resize(dim_, X.cols());
        Index r = 0;
        for (Index l = 0; l < op_.n_layers(); ++l) {
            if (op_.colour(l) != side_) continue;
            Xs.middleRows(r, op_.size(l)) = X.middleRows(op_.offset(l), op_.size(l));
            r += op_.size(l);
        }
    }
    void apply(const RowMat& Xs, RowMat& Ys) const override {
        RowMat X, T(op_.dim(), Xs.cols()), Y(op_.dim(), Xs.cols());
        scatter(Xs, X);
        op_.apply_from(side_, X, T);
        op_.apply_from(1 - side_, T, Y);
        gather(Y, Ys);
    }

private:
    const LayeredOperator& op_;
    int side_;
    Index dim_ = 0;
};

// The non-zero entries of some blocks of a LayeredGraph as CSR (row i of
// block b: its columns ascending, |w| values), so that the O(nnz) passes
// (degrees, edges, n-cut, operator build) skip the zeros of sparse blocks
// instead of scanning the whole block. The visiting order is that of the
// dense scan, so every result is bit-identical. Storage a caller may keep
// and reuse for many graphs of the same shape.
struct SparseIndex {
    struct Layer {
        bool used = false;
        std::vector<Index> indptr;
        std::vector<std::int32_t> indices;
        std::vector<double> absval;
    };
    std::vector<Layer> layers;  // one per block
};

class LayeredGraph {
public:
    // A chain: block l joins layers l and l + 1 (an MLP's (in, out) weights).
    // `finite_checked`: the caller guarantees every weight is finite (a
    // shuffle of an already checked network), which skips that O(nnz) scan.
    explicit LayeredGraph(std::vector<LayerView> layers, bool finite_checked = false)
        : layers_(std::move(layers)) {
        if (layers_.empty()) throw std::invalid_argument("weights: need at least one layer");
        sizes_.push_back(layers_[0].rows);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerView& w = layers_[l];
            if (w.rows < 0 || w.cols < 0) throw std::invalid_argument("weights: negative shape");
            if (w.rows != sizes_.back())
                throw std::invalid_argument("weights: layer " + std::to_string(l) + " has " +
                                            std::to_string(w.rows) + " inputs but layer " +
                                            std::to_string(l == 0 ? 0 : l - 1) + " has " +
                                            std::to_string(sizes_.back()) + " outputs");
            sizes_.push_back(w.cols);
            const Index m = finite_checked ? 0 : w.rows * w.cols;
            for (Index e = 0; e < m; ++e)
                if (!std::isfinite(w.data[e]))
                    throw std::invalid_argument("weights: layer " + std::to_string(l) +
                                                " has a NaN or infinite weight");
            src_.push_back(static_cast<Index>(l));
            dst_.push_back(static_cast<Index>(l) + 1);
        }
        finish();
    }

    // Blocks between any pairs of layers: block b joins layer src[b] to layer
    // dst[b] (src[b] < dst[b], no pair twice) with shape (sizes[src[b]],
    // sizes[dst[b]]).
    LayeredGraph(std::vector<Index> sizes, std::vector<Index> src, std::vector<Index> dst,
                 std::vector<LayerView> blocks, bool finite_checked = false)
        : layers_(std::move(blocks)), sizes_(std::move(sizes)), src_(std::move(src)), dst_(std::move(dst)) {
        const Index L = static_cast<Index>(sizes_.size());
        const std::size_t nb = layers_.size();
        if (L < 1) throw std::invalid_argument("sizes: need at least one layer");
        for (Index l = 0; l < L; ++l)
            if (sizes_[l] < 0)
                throw std::invalid_argument("sizes: layer " + std::to_string(l) + " has a negative size (" +
                                            std::to_string(sizes_[l]) + ")");
        if (nb == 0) throw std::invalid_argument("blocks: need at least one block");
        if (src_.size() != nb || dst_.size() != nb)
            throw std::invalid_argument("src and dst must have one entry per block (" + std::to_string(nb) +
                                        "), got " + std::to_string(src_.size()) + " and " +
                                        std::to_string(dst_.size()));
        std::vector<std::pair<Index, Index>> seen;
        for (std::size_t b = 0; b < nb; ++b) {
            const Index s = src_[b], d = dst_[b];
            const std::string name = "blocks[" + std::to_string(b) + "] (layers " + std::to_string(s) +
                                     " -> " + std::to_string(d) + ")";
            if (s < 0 || d >= L)
                throw std::invalid_argument(name + ": layers must be in [0, " + std::to_string(L) + ")");
            if (s >= d) throw std::invalid_argument(name + ": src must be < dst");
            seen.emplace_back(s, d);
            const LayerView& w = layers_[b];
            if (w.rows != sizes_[s] || w.cols != sizes_[d])
                throw std::invalid_argument(name + " must have shape (" + std::to_string(sizes_[s]) + ", " +
                                            std::to_string(sizes_[d]) + "), got (" + std::to_string(w.rows) +
                                            ", " + std::to_string(w.cols) + ")");
            const Index m = finite_checked ? 0 : w.rows * w.cols;
            for (Index e = 0; e < m; ++e)
                if (!std::isfinite(w.data[e])) throw std::invalid_argument(name + " has a NaN or infinite weight");
        }
        std::sort(seen.begin(), seen.end());
        for (std::size_t b = 1; b < seen.size(); ++b)
            if (seen[b] == seen[b - 1])
                throw std::invalid_argument("blocks: the pair of layers (" + std::to_string(seen[b].first) + ", " +
                                            std::to_string(seen[b].second) + ") appears twice");
        finish();
    }

    Index n_nodes() const { return offsets_.back() + sizes_.back(); }
    const std::vector<Index>& sizes() const { return sizes_; }
    const std::vector<Index>& offsets() const { return offsets_; }
    const std::vector<LayerView>& blocks() const { return layers_; }
    const std::vector<Index>& src() const { return src_; }
    const std::vector<Index>& dst() const { return dst_; }
    // The 2-colouring of the layer graph (see the contract), or empty.
    const std::vector<int>& colours() const { return colour_; }

    // Indexes the blocks b with which[b] != 0 into `store` (one pass over
    // each), which this graph then reads instead of their dense blocks;
    // `store` must outlive the graph's use. Worth it for sparse blocks only.
    void use_sparse(SparseIndex& store, const std::vector<char>& which) {
        store.layers.resize(layers_.size());
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            SparseIndex::Layer& sp = store.layers[l];
            sp.used = l < which.size() && which[l] && layers_[l].cols <= INT32_MAX;
            if (!sp.used) continue;
            const LayerView& w = layers_[l];
            sp.indptr.assign(1, 0);
            // Branch-free: every entry is written, the cursor advances on
            // non-zeros only (so room for one more full row is kept).
            std::size_t k = 0;
            if (sp.indices.size() < static_cast<std::size_t>(w.cols))
                sp.indices.resize(static_cast<std::size_t>(w.cols));
            sp.absval.resize(sp.indices.size());
            for (Index i = 0; i < w.rows; ++i) {
                if (sp.indices.size() - k < static_cast<std::size_t>(w.cols)) {
                    sp.indices.resize(2 * sp.indices.size() + static_cast<std::size_t>(w.cols));
                    sp.absval.resize(sp.indices.size());
                }
                const double* row = w.data + i * w.cols;
                std::int32_t* idx = sp.indices.data();
                double* val = sp.absval.data();
                for (Index j = 0; j < w.cols; ++j) {
                    idx[k] = static_cast<std::int32_t>(j);
                    val[k] = std::fabs(row[j]);
                    k += row[j] != 0.0;
                }
                sp.indptr.push_back(static_cast<Index>(k));
            }
        }
        sparse_ = &store;
    }

    std::vector<double> degrees() const {
        std::vector<double> d(n_nodes(), 0.0);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerView& w = layers_[l];
            double* din = d.data() + offsets_[src_[l]];
            double* dout = d.data() + offsets_[dst_[l]];
            // Skipping zeros changes no sum: every degree starts at +0.
            if (const SparseIndex::Layer* sp = sparse(l)) {
                for (Index i = 0; i < w.rows; ++i) {
                    double s = 0.0;
                    for (Index e = sp->indptr[i]; e < sp->indptr[i + 1]; ++e) {
                        s += sp->absval[e];
                        dout[sp->indices[e]] += sp->absval[e];
                    }
                    din[i] += s;
                }
                continue;
            }
            for (Index i = 0; i < w.rows; ++i) {
                const double* row = w.data + i * w.cols;
                double s = 0.0;
                for (Index j = 0; j < w.cols; ++j) {
                    const double a = std::fabs(row[j]);
                    s += a;
                    dout[j] += a;
                }
                din[i] += s;
            }
        }
        return d;
    }

    template <class F>
    void for_each_edge(F&& f) const {
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerView& w = layers_[l];
            const Index r0 = offsets_[src_[l]], c0 = offsets_[dst_[l]];
            if (const SparseIndex::Layer* sp = sparse(l)) {
                for (Index i = 0; i < w.rows; ++i)
                    for (Index e = sp->indptr[i]; e < sp->indptr[i + 1]; ++e)
                        f(r0 + i, c0 + sp->indices[e], sp->absval[e]);
                continue;
            }
            for (Index i = 0; i < w.rows; ++i) {
                const double* row = w.data + i * w.cols;
                for (Index j = 0; j < w.cols; ++j)
                    if (row[j] != 0.0) f(r0 + i, c0 + j, std::fabs(row[j]));
            }
        }
    }

    double ncut(const Index* labels, Index k) const {
        std::vector<double> cut(k, 0.0), vol(k, 0.0);
        for_each_edge([&](Index i, Index j, double w) {
            const Index a = labels[i], b = labels[j];
            if (a < 0 || b < 0)
                throw std::invalid_argument("labels: -1 on node " + std::to_string(a < 0 ? i : j) +
                                            " which has edges");
            vol[a] += w;
            vol[b] += w;
            if (a != b) {
                cut[a] += w;
                cut[b] += w;
            }
        });
        return CsrGraph::sum_ratios(cut, vol);
    }

    std::unique_ptr<Operator> normalized(const Compaction& c) const { return layered(c); }

    std::unique_ptr<LayeredOperator> layered(const Compaction& c) const {
        auto op = std::make_unique<LayeredOperator>();
        layered_into(c, *op);
        return op;
    }

    // Builds the operator into `op`, reusing its storage (null replicates
    // rebuild one operator per thread instead of allocating a new one).
    void layered_into(const Compaction& c, LayeredOperator& op) const {
        const std::size_t L = sizes_.size();
        std::vector<Index> csize(L, 0), coff(L, 0);
        std::vector<std::vector<Index>> kept(L);
        for (std::size_t l = 0; l < L; ++l) {
            for (Index u = 0; u < sizes_[l]; ++u)
                if (c.compact_of[offsets_[l] + u] >= 0) kept[l].push_back(u);
            csize[l] = static_cast<Index>(kept[l].size());
            if (l > 0) coff[l] = coff[l - 1] + csize[l - 1];
        }
        op.reset(coff, csize, src_, dst_, colour_);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerView& w = layers_[l];
            const Index ls = src_[l], ld = dst_[l];
            const Index r = csize[ls], q = csize[ld];
            const double* sin = c.inv_sqrt.data() + coff[ls];
            const double* sout = c.inv_sqrt.data() + coff[ld];
            const std::vector<Index>& cols = kept[ld];
            const bool all_cols = q == w.cols;
            LayeredOperator::Half& fwd = op.block(l).fwd;
            LayeredOperator::Half& bwd = op.block(l).bwd;
            // One pass over the weights builds the forward half as CSR (rows
            // in order, columns ascending); a block dense enough for the GEMM
            // kernel is then expanded, and the backward half is its transpose.
            fwd.dense = false;
            fwd.rows = r;
            fwd.cols = q;
            fwd.indptr.assign(1, 0);
            fwd.indices.clear();
            fwd.val.clear();
            Index nnz = 0;  // non-zero weights (some may scale to 0.0)
            const SparseIndex::Layer* sp = sparse(l);
            // A non-zero weight joins two kept units, so the sparse rows map
            // straight to compact columns (ascending, as in the dense scan).
            const Index* col_of = c.compact_of.data() + offsets_[ld];
            for (Index a = 0; sp && a < r; ++a) {
                const Index row = kept[ls][a];
                const double sa = sin[a];
                for (Index e = sp->indptr[row]; e < sp->indptr[row + 1]; ++e) {
                    ++nnz;
                    const Index b = col_of[sp->indices[e]] - coff[ld];
                    const double v = sp->absval[e] * sa * sout[b];
                    if (v != 0.0) {
                        fwd.indices.push_back(b);
                        fwd.val.push_back(v);
                    }
                }
                fwd.indptr.push_back(static_cast<Index>(fwd.indices.size()));
            }
            for (Index a = 0; !sp && a < r; ++a) {
                const double* row = w.data + kept[ls][a] * w.cols;
                const double sa = sin[a];
                for (Index b = 0; b < q; ++b) {
                    const double x = row[all_cols ? b : cols[b]];
                    if (x != 0.0) {
                        ++nnz;
                        const double v = std::fabs(x) * sa * sout[b];
                        if (v != 0.0) {
                            fwd.indices.push_back(b);
                            fwd.val.push_back(v);
                        }
                    }
                }
                fwd.indptr.push_back(static_cast<Index>(fwd.indices.size()));
            }
            const bool dense = static_cast<double>(nnz) >= kDenseThreshold * static_cast<double>(r * q);
            transpose_half(fwd, bwd, dense);
            if (dense) expand_half(fwd);
        }
    }

private:
    // Offsets of the layers, and the layer graph's 2-colouring: breadth-first
    // from each uncoloured layer in layer order, colour 0 at its root, so a
    // chain gets l % 2. An edge between layers of one colour (an odd cycle)
    // leaves colour_ empty.
    void finish() {
        offsets_.assign(1, 0);
        for (std::size_t l = 0; l + 1 < sizes_.size(); ++l) offsets_.push_back(offsets_.back() + sizes_[l]);
        const std::size_t L = sizes_.size();
        std::vector<std::vector<Index>> next(L);
        for (std::size_t b = 0; b < src_.size(); ++b) {
            next[src_[b]].push_back(dst_[b]);
            next[dst_[b]].push_back(src_[b]);
        }
        colour_.assign(L, -1);
        std::vector<Index> queue;
        for (std::size_t root = 0; root < L; ++root) {
            if (colour_[root] >= 0) continue;
            colour_[root] = 0;
            queue.assign(1, static_cast<Index>(root));
            for (std::size_t h = 0; h < queue.size(); ++h) {
                const Index u = queue[h];
                for (const Index v : next[u]) {
                    if (colour_[v] < 0) {
                        colour_[v] = 1 - colour_[u];
                        queue.push_back(v);
                    } else if (colour_[v] == colour_[u]) {
                        colour_.clear();
                        return;
                    }
                }
            }
        }
    }

    const SparseIndex::Layer* sparse(std::size_t l) const {
        return sparse_ && sparse_->layers[l].used ? &sparse_->layers[l] : nullptr;
    }

    // CSR half -> the same values as a dense row-major block.
    static void expand_half(LayeredOperator::Half& h) {
        h.d.assign(static_cast<std::size_t>(h.rows * h.cols), 0.0);
        for (Index a = 0; a < h.rows; ++a)
            for (Index e = h.indptr[a]; e < h.indptr[a + 1]; ++e) h.d[a * h.cols + h.indices[e]] = h.val[e];
        h.dense = true;
    }

    // The transpose of the CSR half `f` into `t`: CSR by a counting pass
    // (columns ascending within each row), or dense row-major.
    static void transpose_half(const LayeredOperator::Half& f, LayeredOperator::Half& t, bool dense) {
        t.rows = f.cols;
        t.cols = f.rows;
        t.dense = dense;
        if (dense) {
            t.d.assign(static_cast<std::size_t>(t.rows * t.cols), 0.0);
            for (Index a = 0; a < f.rows; ++a)
                for (Index e = f.indptr[a]; e < f.indptr[a + 1]; ++e) t.d[f.indices[e] * t.cols + a] = f.val[e];
            return;
        }
        const Index nnz = static_cast<Index>(f.indices.size());
        t.indptr.assign(static_cast<std::size_t>(t.rows + 1), 0);
        for (Index e = 0; e < nnz; ++e) ++t.indptr[f.indices[e] + 1];
        for (Index b = 0; b < t.rows; ++b) t.indptr[b + 1] += t.indptr[b];
        t.indices.resize(static_cast<std::size_t>(nnz));
        t.val.resize(static_cast<std::size_t>(nnz));
        std::vector<Index> next(t.indptr.begin(), t.indptr.end() - 1);
        for (Index a = 0; a < f.rows; ++a)
            for (Index e = f.indptr[a]; e < f.indptr[a + 1]; ++e) {
                const Index at = next[f.indices[e]]++;
                t.indices[at] = a;
                t.val[at] = f.val[e];
            }
    }

    std::vector<LayerView> layers_;  // the blocks, in their given order
    std::vector<Index> sizes_;
    std::vector<Index> src_, dst_;
    std::vector<Index> offsets_;
    std::vector<int> colour_;
    const SparseIndex* sparse_ = nullptr;
};

}  // namespace netmod
