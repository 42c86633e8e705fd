// Any cell whose step is elementwise (after its two products), run as the hand-written loops
// run the LSTM: per step one matrix product for the hidden side and one pass over the step's
// elementwise operations; backwards per step one pass and one product. rnnkit/engine/planes.py
// and derive.py turn the cell's own step (traced into ATen operators) into two programs, the
// forward and its derived backward, over "planes" (one (B, H) block of a value); a Program
// runs one over every element of a step in blocks of rows and features, each instruction a
// short loop that the compiler vectorises (-O3 -ffast-math: exp and tanh from libmvec).
// Nothing is written per cell.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <memory>
#include <tuple>
#include <vector>

#include "loops.h"

namespace {

// The operation codes (rnnkit/engine/planes.py writes the same numbers).
enum Code : int64_t {
  kLoad = 0,       // dst = source[a] plane b (a source's row stride 0: a parameter)
  kStore = 1,      // target[a] plane b = reg c
  kAccumulate = 2, // target[a] plane b += reg c
  kConstant = 3,   // dst = k
  kAdd = 4,
  kSub = 5,
  kMul = 6,
  kDiv = 7,
  kNeg = 8,
  kSigmoid = 9,
  kTanh = 10,
  kRelu = 11,       // NaN passes (as torch's relu)
  kExp = 12,
  kAtLeast = 13,    // dst = max(a, k), NaN passes
  kAtMost = 14,     // dst = min(a, k), NaN passes
  kKeepIfAbove = 15,     // dst = a > k ? b : 0
  kKeepIfAtLeast = 16,   // dst = a >= k ? b : 0
  kKeepIfAtMost = 17,    // dst = a <= k ? b : 0
  kLoadScalar = 18,      // dst = source[a][b] for every lane (a one-element parameter)
  kMove = 19,            // dst = a, copied (a stored value that is a load: see run)
  kRowSum = 20,          // every lane = the sum of a's lanes (the program runs whole rows)
  kRsqrt = 21,           // dst = 1 / sqrt(a)
  kPow = 22,             // dst = a^k
  kSqrt = 23,
  kLog = 24,
};

constexpr int64_t kLanes = 256;          // features per block (unless a program runs whole rows)
constexpr int64_t kBlockRows = 8;        // rows per block at most
constexpr int64_t kBlockElements = 1024; // a block's size in elements, about: rows = this / lanes

struct Instruction {
  int64_t code, dst, a, b, c;
  double k;
};

// Where a program reads or writes: a base pointer and the stride between rows (0: the same
// row for every batch row, a parameter).
template <typename scalar_t>
struct Plane {
  scalar_t* data;
  int64_t row_stride;
};

}  // namespace

class Program {
 public:
  Program(int64_t registers, std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t,
                                                    double>> instructions)
      : registers_(registers) {
    for (const auto& [code, dst, a, b, c, k] : instructions) {
      instructions_.push_back({code, dst, a, b, c, k});
      whole_rows_ = whole_rows_ || code == kRowSum;
    }
  }

  // Run over rows × hidden elements: sources and targets as base pointers with row strides;
  // plane p of a source starts p·hidden after its base. A block is up to kBlockRows rows by
  // up to kLanes features (a program that sums over a row, a layer norm, takes whole rows),
  // and each instruction runs over the whole block: its cost of dispatch is shared by about
  // a thousand elements. A register is a pointer to its block and a row stride: a load points
  // it at the source (no copy), an operation at its own lanes in `file`. Stores come after
  // every operation, and a stored load is first copied (kMove), so a target that is also a
  // source (a gradient carried in place) is read before it is written.
  template <typename scalar_t>
  void run(const std::vector<Plane<scalar_t>>& sources,
           const std::vector<Plane<scalar_t>>& targets, int64_t rows, int64_t hidden) const {
    const int64_t lanes = whole_rows_ ? hidden : std::min(kLanes, hidden);
    const int64_t block_rows = std::max<int64_t>(1, std::min(kBlockRows, kBlockElements / lanes));
    at::parallel_for(0, rows, grain_rows(hidden * 4), [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> file(registers_ * block_rows * lanes);
      std::vector<Register<scalar_t>> registers(registers_);
      for (int64_t row = begin; row < end; row += block_rows) {
        const Block block{row, std::min(block_rows, end - row), lanes};
        for (int64_t j0 = 0; j0 < hidden; j0 += lanes) {
          const int64_t n = std::min(lanes, hidden - j0);
          for (const Instruction& op : instructions_)
            execute(op, file.data(), registers.data(), sources, targets, block, j0, n, hidden);
        }
      }
    });
  }

 private:
  struct Block {
    int64_t first_row, rows, lanes;  // lanes: a register's row stride in `file`
  };

  template <typename scalar_t>
  struct Register {
    const scalar_t* data = nullptr;
    int64_t row_stride = 0;
  };

  // f(d, a, b) over every row of the block: d of the destination, a and b of the operands.
  template <typename scalar_t, typename F>
  static void rows(const Block& block, scalar_t* d, Register<scalar_t> a, Register<scalar_t> b,
                   F f) {
    for (int64_t r = 0; r < block.rows; ++r)
      f(d + r * block.lanes, a.data + r * a.row_stride, b.data + r * b.row_stride);
  }

  template <typename scalar_t>
  static void execute(const Instruction& op, scalar_t* file, Register<scalar_t>* registers,
                      const std::vector<Plane<scalar_t>>& sources,
                      const std::vector<Plane<scalar_t>>& targets, const Block& block, int64_t j0,
                      int64_t n, int64_t hidden) {
    if (op.code == kLoad) {
      const Plane<scalar_t>& s = sources[op.a];
      registers[op.dst] = {s.data + block.first_row * s.row_stride + op.b * hidden + j0,
                           s.row_stride};
      return;
    }
    if (op.code == kStore || op.code == kAccumulate) {
      const Plane<scalar_t>& t = targets[op.a];
      const Register<scalar_t> c = registers[op.c];
      for (int64_t r = 0; r < block.rows; ++r) {
        scalar_t* __restrict__ p =
            t.data + (block.first_row + r) * t.row_stride + op.b * hidden + j0;
        const scalar_t* __restrict__ q = c.data + r * c.row_stride;
        if (op.code == kStore) {
          for (int64_t v = 0; v < n; ++v) p[v] = q[v];
        } else {
          for (int64_t v = 0; v < n; ++v) p[v] += q[v];
        }
      }
      return;
    }
    scalar_t* d = file + op.dst * block.rows * block.lanes;
    const scalar_t k = static_cast<scalar_t>(op.k);
    const Register<scalar_t> a = registers[op.code == kLoadScalar ? 0 : op.a];
    const Register<scalar_t> b = registers[op.b < 0 || op.code == kLoadScalar ? 0 : op.b];
    registers[op.dst] = {d, block.lanes};  // after reading a and b: dst is never an operand
    using T = scalar_t;
#define RNNKIT_ROWS(EXPRESSION)                                                             \
  rows(block, d, a, b,                                                                      \
       [&](T* __restrict__ dr, const T* __restrict__ ar, const T* __restrict__ br) {         \
         for (int64_t v = 0; v < n; ++v) dr[v] = (EXPRESSION);                              \
       })
    switch (op.code) {
      case kConstant: RNNKIT_ROWS(k); break;
      case kLoadScalar: {
        const T value = sources[op.a].data[op.b];
        RNNKIT_ROWS(value);
        break;
      }
      case kMove: RNNKIT_ROWS(ar[v]); break;
      case kRowSum:
        rows(block, d, a, b, [&](T* __restrict__ dr, const T* __restrict__ ar, const T*) {
          T sum = 0;
          for (int64_t v = 0; v < n; ++v) sum += ar[v];
          for (int64_t v = 0; v < n; ++v) dr[v] = sum;
        });
        break;
      case kRsqrt: RNNKIT_ROWS(T(1) / std::sqrt(ar[v])); break;
      case kPow: RNNKIT_ROWS(std::pow(ar[v], k)); break;
      case kSqrt: RNNKIT_ROWS(std::sqrt(ar[v])); break;
      case kLog: RNNKIT_ROWS(std::log(ar[v])); break;
      case kAdd: RNNKIT_ROWS(ar[v] + br[v]); break;
      case kSub: RNNKIT_ROWS(ar[v] - br[v]); break;
      case kMul: RNNKIT_ROWS(ar[v] * br[v]); break;
      case kDiv: RNNKIT_ROWS(ar[v] / br[v]); break;
      case kNeg: RNNKIT_ROWS(-ar[v]); break;
      case kSigmoid: RNNKIT_ROWS(sigmoid(ar[v])); break;
      case kTanh: RNNKIT_ROWS(std::tanh(ar[v])); break;
      case kRelu: RNNKIT_ROWS(relu_keeping_nan(ar[v])); break;
      case kExp: RNNKIT_ROWS(std::exp(ar[v])); break;
      case kAtLeast: RNNKIT_ROWS(is_nan(ar[v]) ? ar[v] : (ar[v] < k ? k : ar[v])); break;
      case kAtMost: RNNKIT_ROWS(is_nan(ar[v]) ? ar[v] : (ar[v] > k ? k : ar[v])); break;
      case kKeepIfAbove: RNNKIT_ROWS(ar[v] > k ? br[v] : T(0)); break;
      case kKeepIfAtLeast: RNNKIT_ROWS(ar[v] >= k ? br[v] : T(0)); break;
      case kKeepIfAtMost: RNNKIT_ROWS(ar[v] <= k ? br[v] : T(0)); break;
      default: TORCH_CHECK(false, "unknown instruction ", op.code);
    }
#undef RNNKIT_ROWS
  }

  int64_t registers_;
  bool whole_rows_ = false;
  std::vector<Instruction> instructions_;
};

namespace {

template <typename scalar_t>
Plane<scalar_t> rows_of(const at::Tensor& t) {  // a (B, W) matrix, or a (W,) parameter
  return {t.data_ptr<scalar_t>(), t.dim() == 2 ? t.stride(0) : 0};
}

// The rows of a packed (N, W) matrix from row `first` on (no tensor made: a step at batch 4
// would spend more on making views than on its arithmetic).
template <typename scalar_t>
Plane<scalar_t> rows_from(const at::Tensor& t, int64_t first) {
  return {t.data_ptr<scalar_t>() + first * t.stride(0), t.stride(0)};
}

void check_step_inputs(const at::Tensor& x_proj, const std::vector<int64_t>& batch_sizes,
                       const std::vector<at::Tensor>& initial,
                       const c10::optional<at::Tensor>& w_hh,
                       const std::vector<at::Tensor>& extra) {
  TORCH_CHECK(x_proj.dim() == 2 && x_proj.is_contiguous(),
              "derived loop: x_proj must be a contiguous packed (N, G·H)");
  TORCH_CHECK(x_proj.device().is_cpu(), "the compiled loops run on the CPU");
  int64_t total = 0;
  for (int64_t size : batch_sizes) {
    TORCH_CHECK(size > 0 && size <= initial[0].size(0), "derived loop: a batch size out of range");
    total += size;
  }
  TORCH_CHECK(total == x_proj.size(0), "derived loop: the batch sizes do not add up to N");
  for (const at::Tensor& s : initial)
    TORCH_CHECK(s.is_contiguous() && s.scalar_type() == x_proj.scalar_type(),
                "derived loop: every state must be contiguous and of x_proj's dtype");
  for (const at::Tensor& e : extra)
    TORCH_CHECK(e.is_contiguous() && e.scalar_type() == x_proj.scalar_type(),
                "derived loop: every parameter must be contiguous and of x_proj's dtype");
  if (w_hh.has_value())
    TORCH_CHECK(w_hh->is_contiguous(), "derived loop: w_hh must be contiguous");
}

// Where each step's rows start in the packed layout (time order).
std::vector<int64_t> offsets_of(const std::vector<int64_t>& batch_sizes) {
  std::vector<int64_t> offsets(batch_sizes.size());
  int64_t offset = 0;
  for (size_t t = 0; t < batch_sizes.size(); ++t) {
    offsets[t] = offset;
    offset += batch_sizes[t];
  }
  return offsets;
}

}  // namespace

// The forward loop over a packed batch: x_proj (N, G·H), the rows of step t at offsets[t]
// (time order; every sequence of equal length is the case batch_sizes = [B] * T); initial:
// the states, h first, each (B, H); w_hh (G_h·H, H) and b_hh or none; extra: the cell's own
// parameters, flat. Each state lives in one (B, H) buffer updated in place for the rows that
// run a step, so that a sequence that ended (forward) keeps its last state and one that has
// not started (reverse) its initial one. The program reads [x_t, W_hh h_{t-1} (if w_hh), every
// state, every parameter, b_hh (if w_hh and b_hh)] and writes [every state (in place), h again
// (the output rows), then `saved` planes of values the backward reads]. keep: a backward will
// come, so each step's states before it are kept; keep_hh: so is W_hh h_{t-1} (the backward
// program reads it). Returns [outputs (N, H), W_hh h (N, G_h·H) (with keep_hh; else scratch;
// empty without w_hh), the saved values (N, saved·H) (empty without), then for each state its
// values before each step (N, H) (empty without keep), then the final states (B, H)].
std::vector<at::Tensor> derived_forward(const Program& forward, const at::Tensor& x_proj,
                                        const std::vector<int64_t>& batch_sizes,
                                        const std::vector<at::Tensor>& initial,
                                        const c10::optional<at::Tensor>& w_hh,
                                        const c10::optional<at::Tensor>& b_hh,
                                        const std::vector<at::Tensor>& extra, bool reverse,
                                        bool keep, bool keep_hh, int64_t saved_planes) {
  check_step_inputs(x_proj, batch_sizes, initial, w_hh, extra);
  const int64_t steps = batch_sizes.size(), rows = x_proj.size(0), hidden = initial[0].size(1);
  const std::vector<int64_t> offsets = offsets_of(batch_sizes);
  at::Tensor outputs = x_proj.new_empty({rows, hidden});
  at::Tensor hh = w_hh.has_value()
                      ? x_proj.new_empty({keep_hh ? rows : initial[0].size(0), w_hh->size(0)})
                      : x_proj.new_empty({0});
  at::Tensor saved = x_proj.new_empty({saved_planes > 0 ? rows : 0, saved_planes * hidden});
  std::vector<at::Tensor> current, before;
  for (const at::Tensor& s : initial) {
    current.push_back(s.clone());
    before.push_back(x_proj.new_empty({keep ? rows : 0, hidden}));
  }
  const at::Tensor w_hh_t = w_hh.has_value() ? w_hh->t() : at::Tensor();
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = reverse ? steps - 1 - k : k, size = batch_sizes[t], at = offsets[t];
    AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "derived_forward", [&] {
      if (keep)
        for (size_t s = 0; s < current.size(); ++s)
          std::memcpy(before[s].data_ptr<scalar_t>() + at * hidden,
                      current[s].data_ptr<scalar_t>(), size * hidden * sizeof(scalar_t));
      std::vector<Plane<scalar_t>> sources{rows_from<scalar_t>(x_proj, at)};
      if (w_hh.has_value()) {
        at::Tensor a = hh.narrow(0, keep_hh ? at : 0, size);
        at::mm_out(a, current[0].narrow(0, 0, size), w_hh_t);  // W_hh h_{t-1}; + b_hh below
        sources.push_back(rows_of<scalar_t>(a));
      }
      for (const at::Tensor& c : current) sources.push_back(rows_of<scalar_t>(c));
      for (const at::Tensor& e : extra) sources.push_back({e.data_ptr<scalar_t>(), 0});
      if (w_hh.has_value() && b_hh.has_value()) sources.push_back({b_hh->data_ptr<scalar_t>(), 0});
      std::vector<Plane<scalar_t>> targets;
      for (const at::Tensor& c : current) targets.push_back(rows_of<scalar_t>(c));
      targets.push_back(rows_from<scalar_t>(outputs, at));
      if (saved_planes > 0) targets.push_back(rows_from<scalar_t>(saved, at));
      forward.run(sources, targets, size, hidden);
    });
  }
  std::vector<at::Tensor> result{outputs, hh, saved};
  for (const at::Tensor& values : before) result.push_back(values);
  for (const at::Tensor& c : current) result.push_back(c);
  return result;
}

// The backward loop, from derived_forward's kept values (keep = true) and the gradients of the
// outputs (N, H) and of the final states (B, H). x_proj and hh may be empty where the program
// does not read them. The program reads [x_t, W_hh h_{t-1} (if w_hh), every state before the
// step, every parameter, b_hh (if w_hh and b_hh), the output's gradient, each state's carried
// gradient, the saved values] and writes [∂x_t, ∂hh_t (if hh_separate), each state's carried
// gradient in place (h's: its direct part), then each parameter's gradient, accumulated per
// row]. The carried gradients are (B, H) buffers, as the forward's states: a row that has not
// run yet, going backwards, holds its final state's gradient, and one that has finished its
// initial state's. h_direct: whether the step reads h other than through hh. Returns [∂x_proj
// (N, gates_width), ∂hh (N, G_h·H) (empty when not hh_separate: then ∂x_proj's rows), the
// initial states' gradients, then each parameter's row sums].
std::vector<at::Tensor> derived_backward(
    const Program& backward, const at::Tensor& x_proj, int64_t gates_width,
    const std::vector<int64_t>& batch_sizes, const at::Tensor& hh, const at::Tensor& saved,
    const std::vector<at::Tensor>& before, const c10::optional<at::Tensor>& w_hh,
    const c10::optional<at::Tensor>& b_hh, const std::vector<at::Tensor>& extra,
    const std::vector<int64_t>& extra_widths, const at::Tensor& grad_outputs,
    const std::vector<at::Tensor>& grad_final, bool reverse, bool hh_separate, bool h_direct) {
  const int64_t steps = batch_sizes.size(), rows = grad_outputs.size(0);
  const int64_t batch = grad_final[0].size(0), hidden = grad_final[0].size(1);
  const std::vector<int64_t> offsets = offsets_of(batch_sizes);
  const bool has_x = x_proj.numel() > 0, has_hh = hh.numel() > 0, has_saved = saved.numel() > 0;
  at::Tensor grad_x = grad_outputs.new_empty({rows, gates_width});
  at::Tensor grad_hh = w_hh.has_value() && hh_separate
                           ? grad_outputs.new_empty({rows, w_hh->size(0)})
                           : grad_outputs.new_empty({0});
  std::vector<at::Tensor> carried;
  for (const at::Tensor& g : grad_final) carried.push_back(g.contiguous().clone());
  std::vector<at::Tensor> grad_extra;
  for (int64_t width : extra_widths) grad_extra.push_back(grad_outputs.new_zeros({batch, width}));
  const at::Tensor grad_out = grad_outputs.contiguous();
  for (int64_t k = steps - 1; k >= 0; --k) {
    const int64_t t = reverse ? steps - 1 - k : k, size = batch_sizes[t], at = offsets[t];
    AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "derived_backward", [&] {
      const Plane<scalar_t> none{nullptr, 0};
      std::vector<Plane<scalar_t>> sources{has_x ? rows_from<scalar_t>(x_proj, at) : none};
      if (w_hh.has_value()) sources.push_back(has_hh ? rows_from<scalar_t>(hh, at) : none);
      for (const at::Tensor& b : before) sources.push_back(rows_from<scalar_t>(b, at));
      for (const at::Tensor& e : extra) sources.push_back({e.data_ptr<scalar_t>(), 0});
      if (w_hh.has_value() && b_hh.has_value()) sources.push_back({b_hh->data_ptr<scalar_t>(), 0});
      sources.push_back(rows_from<scalar_t>(grad_out, at));
      for (const at::Tensor& c : carried) sources.push_back(rows_of<scalar_t>(c));
      if (has_saved) sources.push_back(rows_from<scalar_t>(saved, at));
      std::vector<Plane<scalar_t>> targets{rows_from<scalar_t>(grad_x, at)};
      if (w_hh.has_value() && hh_separate) targets.push_back(rows_from<scalar_t>(grad_hh, at));
      for (const at::Tensor& c : carried) targets.push_back(rows_of<scalar_t>(c));
      for (const at::Tensor& g : grad_extra) targets.push_back(rows_of<scalar_t>(g));
      backward.run(sources, targets, size, hidden);
    });
    if (w_hh.has_value()) {
      const at::Tensor grad_hh_t = (hh_separate ? grad_hh : grad_x).narrow(0, at, size);
      at::Tensor dh = carried[0].narrow(0, 0, size);
      if (h_direct) dh.addmm_(grad_hh_t, *w_hh);  // ∂h_{t-1} += ∂hh_t W_hh
      else at::mm_out(dh, grad_hh_t, *w_hh);
    }
  }
  std::vector<at::Tensor> result{grad_x, grad_hh};
  for (const at::Tensor& c : carried) result.push_back(c);
  for (const at::Tensor& g : grad_extra) result.push_back(g.sum(0));
  return result;
}

void bind_derived_steps(pybind11::module& m) {
  pybind11::class_<Program, std::shared_ptr<Program>>(m, "Program")
      .def(pybind11::init<int64_t, std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t,
                                                          int64_t, double>>>());
  m.def("derived_forward", &derived_forward,
        "a derived step's forward loop: one product and one pass a step");
  m.def("derived_backward", &derived_backward,
        "a derived step's backward loop: one pass and one product a step");
}
