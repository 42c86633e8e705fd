// The two time loops of the LSTM's hand-written BPTT (rnnkit/engine/lstm.py holds the same
// loops in Python, the equations and the meaning of every buffer).
//
// Per step the forward does one matrix product (at::addmm, the BLAS library's) and one pass
// over the gates that applies the nonlinearities and the cell update together; the backward
// does one pass that turns dh, dc into the gates' gradient da, and one matrix product
// dh = da W_hh. Everything else (the input projection, the weight gradients) is one large matrix
// product outside the loops, in Python.
//
// Built by torch.utils.cpp_extension on first use (rnnkit/engine/compiled.py); bound to
// Python in bindings.cpp.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "loops.h"

#include <cmath>
#include <vector>

namespace {

// One row of the batch. a = h_{t-1} W_hh^T on entry; x = x_proj_t. Pre-activation a + x ->
//   a = (i, f, g, o) after their nonlinearities, c_t, tanh(c_t), h_t = o ⊙ tanh(c_t)
template <typename scalar_t>
void forward_row(scalar_t* __restrict__ a_i, scalar_t* __restrict__ a_f,
                 scalar_t* __restrict__ a_g, scalar_t* __restrict__ a_o,
                 const scalar_t* __restrict__ x_i, const scalar_t* __restrict__ x_f,
                 const scalar_t* __restrict__ x_g, const scalar_t* __restrict__ x_o,
                 const scalar_t* __restrict__ c_prev, scalar_t* __restrict__ c,
                 scalar_t* __restrict__ tanh_c, scalar_t* __restrict__ h, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const scalar_t i = sigmoid(x_i[j] + a_i[j]);
    const scalar_t f = sigmoid(x_f[j] + a_f[j]);
    const scalar_t g = std::tanh(x_g[j] + a_g[j]);
    const scalar_t o = sigmoid(x_o[j] + a_o[j]);
    const scalar_t cell = f * c_prev[j] + i * g;  // c_t = f ⊙ c_{t-1} + i ⊙ g
    const scalar_t tanh_cell = std::tanh(cell);
    a_i[j] = i;
    a_f[j] = f;
    a_g[j] = g;
    a_o[j] = o;
    c[j] = cell;
    tanh_c[j] = tanh_cell;
    h[j] = o * tanh_cell;  // h_t = o ⊙ tanh(c_t)
  }
}

template <typename scalar_t>
void forward_pointwise(scalar_t* gates, const scalar_t* x_proj, const scalar_t* c_prev, scalar_t* c, scalar_t* tanh_c,
                       scalar_t* h, int64_t batch, int64_t hidden) {
  at::parallel_for(0, batch, grain_rows(4 * hidden), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      scalar_t* a = gates + b * 4 * hidden;
      const scalar_t* x = x_proj + b * 4 * hidden;
      const int64_t row = b * hidden;
      forward_row(a, a + hidden, a + 2 * hidden, a + 3 * hidden, x, x + hidden, x + 2 * hidden,
                  x + 3 * hidden, c_prev + row, c + row, tanh_c + row, h + row, hidden);
    }
  });
}

// One row of the batch. dh (from step t+1) + grad_output_t, dc (from step t+1) -> da_t, and
// dc becomes dc ⊙ f (the cell gradient handed to step t-1). dh itself is then da_t W_hh,
// outside.
template <typename scalar_t>
void backward_row(const scalar_t* __restrict__ g_i, const scalar_t* __restrict__ g_f,
                  const scalar_t* __restrict__ g_g, const scalar_t* __restrict__ g_o,
                  const scalar_t* __restrict__ c_prev, const scalar_t* __restrict__ tanh_c,
                  const scalar_t* __restrict__ grad_output, const scalar_t* __restrict__ dh,
                  scalar_t* __restrict__ dc, scalar_t* __restrict__ d_i,
                  scalar_t* __restrict__ d_f, scalar_t* __restrict__ d_g,
                  scalar_t* __restrict__ d_o, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const scalar_t i = g_i[j], f = g_f[j], g = g_g[j], o = g_o[j];
    const scalar_t grad_h = dh[j] + grad_output[j];
    const scalar_t t = tanh_c[j];
    const scalar_t grad_c = dc[j] + grad_h * o * (scalar_t(1) - t * t);
    d_i[j] = grad_c * g * i * (scalar_t(1) - i);
    d_f[j] = grad_c * c_prev[j] * f * (scalar_t(1) - f);
    d_g[j] = grad_c * i * (scalar_t(1) - g * g);
    d_o[j] = grad_h * t * o * (scalar_t(1) - o);
    dc[j] = grad_c * f;
  }
}

template <typename scalar_t>
void backward_pointwise(const scalar_t* gates, const scalar_t* c_prev, const scalar_t* tanh_c,
                        const scalar_t* grad_output, const scalar_t* dh, scalar_t* dc,
                        scalar_t* grad_gates, int64_t batch, int64_t hidden) {
  at::parallel_for(0, batch, grain_rows(4 * hidden), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const scalar_t* g = gates + b * 4 * hidden;
      scalar_t* d = grad_gates + b * 4 * hidden;
      const int64_t row = b * hidden;
      backward_row(g, g + hidden, g + 2 * hidden, g + 3 * hidden, c_prev + row, tanh_c + row,
                   grad_output + row, dh + row, dc + row, d, d + hidden, d + 2 * hidden,
                   d + 3 * hidden, hidden);
    }
  });
}

void check_inputs(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0,
                  const at::Tensor& w_hh) {
  TORCH_CHECK(x_proj.dim() == 3 && x_proj.is_contiguous(), "x_proj must be a contiguous (T, B, 4H)");
  TORCH_CHECK(h0.is_contiguous() && c0.is_contiguous(), "h0 and c0 must be contiguous");
  TORCH_CHECK(x_proj.device().is_cpu(), "the compiled loops run on the CPU");
  TORCH_CHECK(w_hh.size(0) == x_proj.size(2) && w_hh.size(1) * 4 == w_hh.size(0),
              "w_hh must be (4H, H)");
}

}  // namespace

// x_proj (T, B, 4H) with both biases added (W_ih x_t + b_ih + b_hh), h0 and c0 (B, H), w_hh (4H, H)
// -> gates (T, B, 4H) after the nonlinearities, c (T, B, H), tanh(c) (T, B, H), h (T, B, H),
//    c_T (B, H). With keep = false (inference: no backward will come) the gates and tanh(c)
//    of only the last step, and c of only the last two, are kept: less memory to touch.
std::vector<at::Tensor> lstm_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                     const at::Tensor& c0, const at::Tensor& w_hh, bool keep) {
  check_inputs(x_proj, h0, c0, w_hh);
  const int64_t steps = x_proj.size(0), batch = x_proj.size(1), hidden = h0.size(1);
  at::Tensor gates = x_proj.new_empty({keep ? steps : 1, batch, 4 * hidden});
  at::Tensor cells = x_proj.new_empty({keep ? steps : 2, batch, hidden});
  at::Tensor tanh_cells = x_proj.new_empty({keep ? steps : 1, batch, hidden});
  at::Tensor outputs = x_proj.new_empty({steps, batch, hidden});
  const at::Tensor w_hh_t = w_hh.t();
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t slot = keep ? t : 0, cell_slot = keep ? t : t % 2;
    at::Tensor a = gates[slot];
    const at::Tensor& h_prev = t == 0 ? h0 : outputs[t - 1];
    at::mm_out(a, h_prev, w_hh_t);  // a = h_{t-1} W_hh^T; x_proj_t is added in the pass below
    const at::Tensor c_prev = t == 0 ? c0 : cells[keep ? t - 1 : (t - 1) % 2];
    AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "lstm_forward", [&] {
      forward_pointwise<scalar_t>(a.data_ptr<scalar_t>(), x_proj[t].data_ptr<scalar_t>(),
                                  c_prev.data_ptr<scalar_t>(), cells[cell_slot].data_ptr<scalar_t>(),
                                  tanh_cells[slot].data_ptr<scalar_t>(),
                                  outputs[t].data_ptr<scalar_t>(), batch, hidden);
    });
  }
  const at::Tensor c_last = steps == 0 ? c0 : cells[keep ? steps - 1 : (steps - 1) % 2];
  return {gates, cells, tanh_cells, outputs, c_last.clone()};
}

// The saved buffers of lstm_forward, c0, w_hh, and the incoming gradients grad_outputs
// (T, B, H), grad_h_n and grad_c_n (B, H) -> da for every step (T, B, 4H), dh_0, dc_0 (B, H)
std::vector<at::Tensor> lstm_backward(const at::Tensor& gates, const at::Tensor& cells,
                                      const at::Tensor& tanh_cells, const at::Tensor& c0,
                                      const at::Tensor& w_hh, const at::Tensor& grad_outputs,
                                      const at::Tensor& grad_h_n, const at::Tensor& grad_c_n) {
  const int64_t steps = gates.size(0), batch = gates.size(1), hidden = cells.size(2);
  const at::Tensor grad_out = grad_outputs.contiguous();
  at::Tensor grad_gates = at::empty_like(gates);
  at::Tensor dh = grad_h_n.contiguous().clone();
  at::Tensor dc = grad_c_n.contiguous().clone();
  for (int64_t t = steps - 1; t >= 0; --t) {
    const at::Tensor c_prev = t == 0 ? c0.contiguous() : cells[t - 1];
    at::Tensor da = grad_gates[t];
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
      backward_pointwise<scalar_t>(gates[t].data_ptr<scalar_t>(), c_prev.data_ptr<scalar_t>(),
                                   tanh_cells[t].data_ptr<scalar_t>(),
                                   grad_out[t].data_ptr<scalar_t>(), dh.data_ptr<scalar_t>(),
                                   dc.data_ptr<scalar_t>(), da.data_ptr<scalar_t>(), batch, hidden);
    });
    at::mm_out(dh, da, w_hh);  // dh_{t-1} = da_t W_hh
  }
  return {grad_gates, dh, dc};
}
