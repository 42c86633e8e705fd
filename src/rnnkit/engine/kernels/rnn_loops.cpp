// The two time loops of the Elman RNN's hand-written BPTT; rnnkit/engine/rnn.py holds the same
// loops in Python with the equations. Per step: one matrix product and one fused pass.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "loops.h"

namespace {

// h = act(x + h), in place on h (which holds h_{t-1} W_hh^T on entry)
template <typename scalar_t>
void forward_row(const scalar_t* __restrict__ x, scalar_t* __restrict__ h, int64_t hidden,
                 bool relu) {
  if (relu) {
    for (int64_t j = 0; j < hidden; ++j) {
      h[j] = relu_keeping_nan(x[j] + h[j]);
    }
  } else {
    for (int64_t j = 0; j < hidden; ++j) h[j] = std::tanh(x[j] + h[j]);
  }
}

// da = (dh + grad_output_t) ⊙ act'(pre-activation), written from h_t itself:
// tanh' = 1 − h_t², relu' = [h_t > 0] (a NaN h_t passes the gradient, as in torch.nn)
template <typename scalar_t>
void backward_row(const scalar_t* __restrict__ h, const scalar_t* __restrict__ dh,
                  const scalar_t* __restrict__ grad_output, scalar_t* __restrict__ da,
                  int64_t hidden, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < hidden; ++j)  // torch.nn's rule: zero where h <= 0 (not for NaN)
      da[j] = h[j] > scalar_t(0) || is_nan(h[j]) ? dh[j] + grad_output[j] : scalar_t(0);
  } else {
    for (int64_t j = 0; j < hidden; ++j)
      da[j] = (dh[j] + grad_output[j]) * (scalar_t(1) - h[j] * h[j]);
  }
}

}  // namespace

// x_proj (T, B, H) = W_ih x_t + b_ih + b_hh, h0 (B, H), w_hh (H, H) -> h_t (T, B, H)
std::vector<at::Tensor> rnn_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                    const at::Tensor& w_hh, bool relu) {
  TORCH_CHECK(x_proj.dim() == 3 && x_proj.is_contiguous(), "x_proj must be a contiguous (T, B, H)");
  const int64_t steps = x_proj.size(0), batch = x_proj.size(1), hidden = h0.size(1);
  at::Tensor outputs = at::empty_like(x_proj);
  const at::Tensor w_hh_t = w_hh.t();
  for (int64_t t = 0; t < steps; ++t) {
    at::Tensor h = outputs[t];
    at::mm_out(h, t == 0 ? h0 : outputs[t - 1], w_hh_t);
    AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "rnn_forward", [&] {
      const scalar_t* x = x_proj[t].data_ptr<scalar_t>();
      scalar_t* hp = h.data_ptr<scalar_t>();
      at::parallel_for(0, batch, grain_rows(hidden), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b)
          forward_row(x + b * hidden, hp + b * hidden, hidden, relu);
      });
    });
  }
  return {outputs};
}

// -> the gradient of the pre-activations (T, B, H) (= of x_proj), dh_0 (B, H)
std::vector<at::Tensor> rnn_backward(const at::Tensor& outputs, const at::Tensor& w_hh,
                                     const at::Tensor& grad_outputs, const at::Tensor& grad_h_n,
                                     bool relu) {
  const int64_t steps = outputs.size(0), batch = outputs.size(1), hidden = outputs.size(2);
  const at::Tensor grad_out = grad_outputs.contiguous();
  at::Tensor grad_pre = at::empty_like(outputs);
  at::Tensor dh = grad_h_n.contiguous().clone();
  for (int64_t t = steps - 1; t >= 0; --t) {
    AT_DISPATCH_FLOATING_TYPES(outputs.scalar_type(), "rnn_backward", [&] {
      const scalar_t* h = outputs[t].data_ptr<scalar_t>();
      const scalar_t* d = dh.data_ptr<scalar_t>();
      const scalar_t* go = grad_out[t].data_ptr<scalar_t>();
      scalar_t* da = grad_pre[t].data_ptr<scalar_t>();
      at::parallel_for(0, batch, grain_rows(hidden), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t row = b * hidden;
          backward_row(h + row, d + row, go + row, da + row, hidden, relu);
        }
      });
    });
    at::mm_out(dh, grad_pre[t], w_hh);  // dh_{t-1} = da_t W_hh
  }
  return {grad_pre, dh};
}
