// The compiled time loops of rnnkit's engines: what each file defines, and the two helpers
// they share. The meaning of every argument is in the Python twin of each loop
// (rnnkit/engine/lstm.py, gru.py, rnn.py, scan.py).

#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// NaN, tested on the bits: the loops are built with -ffast-math, under which the compiler may
// assume that no value is NaN and fold `v != v` (or pick either operand of a max) away. A NaN
// must come out where one went in, or the training loop's non-finite check could not see it.
template <typename T>
inline bool is_nan(T v) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits bits;
  std::memcpy(&bits, &v, sizeof(T));
  return (bits & ~(Bits(1) << (8 * sizeof(T) - 1))) > exponent;
}

// max(v, 0) that lets a NaN through (std::max may return either operand under -ffast-math).
template <typename T>
inline T relu_keeping_nan(T v) {
  return is_nan(v) ? v : std::max(v, T(0));
}

// The cell of packed_direction and packed_inference (rnnkit/nn/recurrence.py passes the code).
enum CellKind : int64_t { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };

// Rows of the batch per parallel task: about 16k values per task, so a small batch stays on one
// thread (spawning would cost more than it saves).
inline int64_t grain_rows(int64_t row_size) { return std::max<int64_t>(1, 16384 / row_size); }

std::vector<at::Tensor> lstm_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                     const at::Tensor& c0, const at::Tensor& w_hh, bool keep);
std::vector<at::Tensor> lstm_backward(const at::Tensor& gates, const at::Tensor& cells,
                                      const at::Tensor& tanh_cells, const at::Tensor& c0,
                                      const at::Tensor& w_hh, const at::Tensor& grad_outputs,
                                      const at::Tensor& grad_h_n, const at::Tensor& grad_c_n);

std::vector<at::Tensor> gru_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                    const at::Tensor& w_hh, const at::Tensor& b_hh, bool keep);
std::vector<at::Tensor> gru_backward(const at::Tensor& gates, const at::Tensor& hidden_n,
                                     const at::Tensor& outputs, const at::Tensor& h0,
                                     const at::Tensor& w_hh, const at::Tensor& grad_outputs,
                                     const at::Tensor& grad_h_n);

std::vector<at::Tensor> rnn_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                    const at::Tensor& w_hh, bool relu);
std::vector<at::Tensor> rnn_backward(const at::Tensor& outputs, const at::Tensor& w_hh,
                                     const at::Tensor& grad_outputs, const at::Tensor& grad_h_n,
                                     bool relu);

// The linear recurrence h_t = a_t ⊙ h_{t-1} + b_t (scan_loops.cpp), forward and backward.
at::Tensor linear_scan_forward(const at::Tensor& a, const at::Tensor& b, const at::Tensor& h0);
std::vector<at::Tensor> linear_scan_backward(const at::Tensor& a, const at::Tensor& h0,
                                             const at::Tensor& h, const at::Tensor& grad);

// One step of each cell (cell_steps.cpp): ATen calls that autograd records.
at::Tensor rnn_projected_step(const at::Tensor& x_proj, const at::Tensor& h,
                              const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh,
                              bool relu);
std::vector<at::Tensor> lstm_projected_step(const at::Tensor& x_proj, const at::Tensor& h,
                                            const at::Tensor& c, const at::Tensor& w_hh,
                                            const c10::optional<at::Tensor>& b_hh,
                                            const c10::optional<at::Tensor>& w_hr);
at::Tensor gru_projected_step(const at::Tensor& x_proj, const at::Tensor& h,
                              const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh);
at::Tensor rnn_cell_step(const at::Tensor& x, const at::Tensor& h, const at::Tensor& w_ih,
                         const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                         const c10::optional<at::Tensor>& b_hh, bool relu);
std::vector<at::Tensor> lstm_cell_step(const at::Tensor& x, const at::Tensor& h,
                                       const at::Tensor& c, const at::Tensor& w_ih,
                                       const at::Tensor& w_hh,
                                       const c10::optional<at::Tensor>& b_ih,
                                       const c10::optional<at::Tensor>& b_hh);
at::Tensor gru_cell_step(const at::Tensor& x, const at::Tensor& h, const at::Tensor& w_ih,
                         const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                         const c10::optional<at::Tensor>& b_hh);
std::vector<at::Tensor> packed_direction(int64_t kind, const at::Tensor& x_proj,
                                         const std::vector<int64_t>& batch_sizes,
                                         const at::Tensor& h0, const c10::optional<at::Tensor>& c0,
                                         const at::Tensor& w_hh,
                                         const c10::optional<at::Tensor>& b_hh,
                                         const c10::optional<at::Tensor>& w_hr, bool reverse,
                                         bool defer_weight_gradients);
std::vector<at::Tensor> packed_inference(int64_t kind, const at::Tensor& x_proj,
                                         const std::vector<int64_t>& batch_sizes,
                                         const at::Tensor& h0, const c10::optional<at::Tensor>& c0,
                                         const at::Tensor& w_hh,
                                         const c10::optional<at::Tensor>& b_hh, bool reverse);

// The hidden side W_hh h + b_hh of every step of one time loop (hidden_side.cpp). With
// `defer`, the steps keep their rows for one product that makes the weights' gradient
// (first order; a graph of the gradient is recorded step by step, as at::linear's).
class HiddenSide {
 public:
  HiddenSide(const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh, bool defer);
  at::Tensor operator()(const at::Tensor& h) const;

 private:
  std::vector<at::Tensor> weights_;  // W_hh and, if there is one, b_hh
  c10::intrusive_ptr<torch::CustomClassHolder> kept_;  // the kept rows, when deferred
};

// One step of packed_loop (cell_steps.cpp): (x_proj_t (b, G·H), state) -> state.
using PackedStep =
    std::function<std::vector<at::Tensor>(const at::Tensor&, const std::vector<at::Tensor>&)>;
std::vector<at::Tensor> packed_loop(const at::Tensor& x_proj,
                                    const std::vector<int64_t>& batch_sizes,
                                    const std::vector<at::Tensor>& initial, bool reverse,
                                    const PackedStep& step);
