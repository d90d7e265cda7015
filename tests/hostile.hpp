#pragma once
// The hostile-input harness: an operator is described once as named arguments with roles
// (input, gate, output, state) and one generic call; the tests in test_hostile.cpp then try
// every class of bad or extreme input on every described operator. A new operator adds one
// entry to its catalog (hostile_catalog.hpp) and inherits all of them.
#include <seqmix/core/executor.hpp>
#include <seqmix/core/tensor_view.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace hostile {

using seqmix::index_t;

enum class role {
    input,        // read; random in [-1, 1]
    gate,         // read; a log forget gate, random in [-0.5, 0]
    rate,         // read; a learning rate (the delta rule's beta), random in [0.05, 1]
    output,       // written
    state_in,     // read; an initial state, random in [-0.5, 0.5]
    state_out,    // written; a final state
    state_inout,  // a decode step's state pool: read and written in place
    param,        // read; an options array (const float*, not a view), random in [-0.5, 0.5]
    projection,   // read; a raw gate or rate projected in the kernel (A_log, beta_sigmoid), random in [-4, 4]
};

// Options arrays are not views: the view-shape and alias classes leave them out.
inline bool is_param(role r) { return r == role::param; }
inline bool is_written(role r) { return r == role::output || r == role::state_out || r == role::state_inout; }
inline bool is_read(role r) { return !is_written(r) || r == role::state_inout; }

// One argument: its own storage, and the view the call will get (which the tests tamper with).
template <class T>
struct arg {
    std::string name;
    role r;
    std::vector<index_t> shape, strides;
    std::shared_ptr<std::vector<T>> storage;
    T* data = nullptr;
    bool given = true;  // false: passed as an empty view ("not given")
};

// Options inside a catalog entry, which the fuzzer varies. Each default keeps the entry's
// own value (the tests use the defaults).
struct entry_options {
    int chunk_size = 0;  // linear attention, GLA, the delta rule, ssd_scan (0: the measured default)
    // softmax_attention
    int window = -2;      // the windowed entries' window_left: -2 the entry's own, -1 none
    bool causal = false;  // the plain entry made causal
    double softcap = 0;
    // sliding_window_attention (-2 / 0: the entry's own)
    int window_left = -2, window_right = -2, dilation = 0;
    // neighborhood_attention_2d (0: the entry's own); causal: bit a for axis a, -1 the entry's own
    int kernel_size = 0, dilation_h = 0, dilation_w = 0, causal_axes = -1;
    // topk_attention and block_sparse_attention (0 / -1: the entry's own)
    int top_k = 0, block_size = 0, top_blocks = -1, local_blocks = -1, keep_first = -1;
    int feature_map = 0;  // linear attention: identity, elu_plus_one, relu (those keep Dk)
    int softplus = -1;    // the scans' delta / dt softplus: -1 the entry's own (on)
    int activation = -1;  // causal_conv1d: -1 the entry's own (silu), 0 none, 1 silu
};

template <class T>
struct arg_set {
    using value_type = T;
    std::vector<arg<T>> args;
    std::vector<std::int32_t> state_indices;  // decode steps: empty = none given
    // Full recurrent operators on a state pool (state_pool_options): with pool_indices the
    // final_state argument is the pool, passed as both states; snapshots as given.
    std::vector<std::int32_t> pool_indices, snapshot_indices;
    int snapshot_interval = 0, max_snapshots = 0;
    int num_threads = 1;
    seqmix::executor* executor = nullptr;  // passed as options.executor
    double scale = 0;                      // passed as options.scale where the operator has one
    entry_options options;

    arg<T>& get(const std::string& name) {
        for (auto& a : args)
            if (a.name == name) return a;
        throw std::logic_error("hostile: no argument " + name);
    }
    const arg<T>& get(const std::string& name) const { return const_cast<arg_set*>(this)->get(name); }
    bool has(const std::string& name) const {
        for (auto& a : args)
            if (a.name == name) return true;
        return false;
    }
    template <std::size_t R>
    seqmix::tensor_view<T, R> view(const std::string& name) const {
        const auto& a = get(name);
        if (!a.given) return {};
        if (a.shape.size() != R) throw std::logic_error("hostile: rank of " + name);
        std::array<index_t, R> sh{}, st{};
        for (std::size_t i = 0; i < R; ++i) {
            sh[i] = a.shape[i];
            st[i] = a.strides[i];
        }
        return {a.data, sh, st};
    }
    template <std::size_t R>
    seqmix::tensor_view<const T, R> in(const std::string& name) const {
        return view<R>(name);
    }
    const std::int32_t* indices() const { return state_indices.empty() ? nullptr : state_indices.data(); }
};

struct arg_desc {
    std::string name;
    role r;
    std::vector<index_t> shape;
};

// An operator as the hostile tests see it.
struct op_spec {
    std::string name;
    std::vector<arg_desc> args;
    std::function<void(const arg_set<float>&)> run;          // the fast operator in float
    std::function<void(const arg_set<double>&)> run_double;  // the fast operator in double
    std::function<void(const arg_set<double>&)> reference;   // seqmix::reference in double
    bool has_scale = true;                                   // options carry `scale`
    std::string channel_arg = "v";                           // its last axis: the head dim or channels
    std::string channel_message = "head dim >= 1";           // the error when that axis is 0
    bool step = false;                                       // a decode step (state pool)
    index_t seq_axis = 1;                                    // token axis of the inputs (steps: none)
};

inline std::vector<index_t> contiguous_strides(const std::vector<index_t>& shape) {
    std::vector<index_t> st(shape.size());
    index_t s = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        st[i] = s;
        s *= shape[i];
    }
    return st;
}

inline index_t count(const std::vector<index_t>& shape) {
    index_t n = 1;
    for (auto e : shape) n *= e;
    return n;
}

// Fresh arguments for op: random inputs from `seed`, outputs filled with a sentinel.
template <class T>
arg_set<T> make_args(const op_spec& op, unsigned seed, T sentinel = T(-7.25)) {
    arg_set<T> s;
    std::mt19937_64 gen(seed);
    for (const auto& d : op.args) {
        arg<T> a;
        a.name = d.name;
        a.r = d.r;
        a.shape = d.shape;
        a.strides = contiguous_strides(d.shape);
        a.storage = std::make_shared<std::vector<T>>(std::size_t(std::max<index_t>(count(d.shape), 1)));
        a.data = a.storage->data();
        double lo = -1, hi = 1;
        if (d.r == role::gate) lo = -0.5, hi = 0;
        if (d.r == role::rate) lo = 0.05, hi = 1;
        if (d.r == role::state_in || d.r == role::state_inout || d.r == role::param) lo = -0.5, hi = 0.5;
        if (d.r == role::projection) lo = -4, hi = 4;
        std::uniform_real_distribution<double> dist(lo, hi);
        for (auto& x : *a.storage) x = is_written(d.r) && d.r != role::state_inout ? sentinel : T(dist(gen));
        s.args.push_back(a);
    }
    // Decode steps get a pool (B + 3 slots in the catalog) in permuted order: row 0 uses
    // slot 3, row b > 0 slot b - 1. Tests about the slots themselves overwrite this.
    if (op.step)
        for (index_t b = 0; b < s.args[0].shape[0]; ++b) s.state_indices.push_back(std::int32_t(b == 0 ? 3 : b - 1));
    return s;
}

// The same values in another element type (the double reference runs on these).
template <class U, class T>
arg_set<U> convert(const arg_set<T>& s) {
    arg_set<U> r;
    r.state_indices = s.state_indices;
    r.pool_indices = s.pool_indices;
    r.snapshot_indices = s.snapshot_indices;
    r.snapshot_interval = s.snapshot_interval;
    r.max_snapshots = s.max_snapshots;
    r.num_threads = s.num_threads;
    r.executor = s.executor;
    r.scale = s.scale;
    r.options = s.options;
    for (const auto& a : s.args) {
        arg<U> b;
        b.name = a.name;
        b.r = a.r;
        b.shape = a.shape;
        b.strides = a.strides;
        b.given = a.given;
        b.storage = std::make_shared<std::vector<U>>(a.storage->begin(), a.storage->end());
        b.data = b.storage->data() + (a.data - a.storage->data());
        r.args.push_back(b);
    }
    return r;
}

// Copies of every buffer, to prove that a failed call wrote nothing.
template <class T>
std::vector<std::vector<T>> snapshot(const arg_set<T>& s) {
    std::vector<std::vector<T>> r;
    for (const auto& a : s.args) r.push_back(*a.storage);
    return r;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// What a value is: a number (0), +Inf (1), -Inf (2) or NaN (3).
inline int value_class(double x) {
    if (std::isnan(x)) return 3;
    if (std::isinf(x)) return x > 0 ? 1 : 2;
    return 0;
}

// Whether a value of class `got` stands where the reference has one of class `want`. Exact:
// the same class. Otherwise (an Inf among the inputs): non-finite where the reference is,
// and an Inf of the reference's sign where both are Inf; NaN and Inf may stand for each
// other, as sums meeting +Inf and -Inf in one order may not in another (docs/api.md).
inline bool same_class(int want, int got, bool exact) {
    if (exact || want == 0 || got == 0) return want == got;
    return want == 3 || got == 3 || want == got;
}

// One written argument against the reference's: the elements of another class (same_class),
// the first of them, the largest error where both are finite, the largest finite magnitude
// of the reference.
struct comparison {
    std::size_t mismatched = 0, first = 0;
    double err = 0, mag = 0;
};
template <class T>
comparison compare_with(const std::vector<T>& got, const std::vector<double>& ref, bool exact_class) {
    comparison c;
    for (double x : ref)
        if (std::isfinite(x)) c.mag = std::max(c.mag, std::abs(x));
    for (std::size_t j = 0; j < ref.size(); ++j) {
        if (!same_class(value_class(ref[j]), value_class(double(got[j])), exact_class)) {
            if (c.mismatched++ == 0) c.first = j;
            continue;
        }
        if (std::isfinite(ref[j])) c.err = std::max(c.err, std::abs(double(got[j]) - ref[j]));
    }
    return c;
}

}  // namespace hostile
