// The two time loops of the GRU's hand-written BPTT; rnnkit/engine/gru.py holds the same loops
// in Python with the equations. Per step: one matrix product (h_{t-1} W_hh^T) and one fused,
// vectorised pass over the gates, forward and backward.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "loops.h"

namespace {

// One row of the batch. hh = h_{t-1} W_hh^T (without b_hh) ->
//   r = σ(x_r + hh_r + b_r), z = σ(x_z + hh_z + b_z), hn = hh_n + b_n,
//   n = tanh(x_n + r ⊙ hn), h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
template <typename scalar_t>
void forward_row(const scalar_t* __restrict__ x, const scalar_t* __restrict__ hh,
                 const scalar_t* __restrict__ bias, const scalar_t* __restrict__ h_prev,
                 scalar_t* __restrict__ gates, scalar_t* __restrict__ hidden_n,
                 scalar_t* __restrict__ h, int64_t hidden) {
  const int64_t H = hidden;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t r = sigmoid(x[j] + hh[j] + bias[j]);
    const scalar_t z = sigmoid(x[H + j] + hh[H + j] + bias[H + j]);
    const scalar_t hn = hh[2 * H + j] + bias[2 * H + j];
    const scalar_t n = std::tanh(x[2 * H + j] + r * hn);
    gates[j] = r;
    gates[H + j] = z;
    gates[2 * H + j] = n;
    hidden_n[j] = hn;
    h[j] = (scalar_t(1) - z) * n + z * h_prev[j];
  }
}

// One row of the batch. grad_h = dh (from step t+1, the direct path z ⊙ ... already in dh) +
// grad_output_t -> the gradient of the gates' pre-activations on the input side (grad_x) and
// on the recurrent side (grad_hh, where the n block is multiplied by r), and dh becomes the
// direct share grad_h ⊙ z (the caller adds grad_hh W_hh).
template <typename scalar_t>
void backward_row(const scalar_t* __restrict__ gates, const scalar_t* __restrict__ hidden_n,
                  const scalar_t* __restrict__ h_prev, const scalar_t* __restrict__ grad_output,
                  scalar_t* __restrict__ dh, scalar_t* __restrict__ grad_x,
                  scalar_t* __restrict__ grad_hh, int64_t hidden) {
  const int64_t H = hidden;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t r = gates[j], z = gates[H + j], n = gates[2 * H + j];
    const scalar_t grad_h = dh[j] + grad_output[j];
    const scalar_t grad_n = grad_h * (scalar_t(1) - z) * (scalar_t(1) - n * n);
    const scalar_t grad_r = grad_n * hidden_n[j] * r * (scalar_t(1) - r);
    const scalar_t grad_z = grad_h * (h_prev[j] - n) * z * (scalar_t(1) - z);
    grad_x[j] = grad_r;
    grad_x[H + j] = grad_z;
    grad_x[2 * H + j] = grad_n;
    grad_hh[j] = grad_r;
    grad_hh[H + j] = grad_z;
    grad_hh[2 * H + j] = grad_n * r;
    dh[j] = grad_h * z;
  }
}

}  // namespace

// x_proj (T, B, 3H) = W_ih x_t + b_ih, h0 (B, H), w_hh (3H, H), b_hh (3H)
// -> gates r, z, n (T, B, 3H), hidden_n = W_hn h_{t-1} + b_hn (T, B, H), h_t (T, B, H).
// With keep = false (inference) the gates and hidden_n of only the last step are kept.
std::vector<at::Tensor> gru_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                    const at::Tensor& w_hh, const at::Tensor& b_hh, bool keep) {
  TORCH_CHECK(x_proj.dim() == 3 && x_proj.is_contiguous(), "x_proj must be a contiguous (T, B, 3H)");
  TORCH_CHECK(h0.is_contiguous() && b_hh.is_contiguous(), "h0 and b_hh must be contiguous");
  const int64_t steps = x_proj.size(0), batch = x_proj.size(1), hidden = h0.size(1);
  at::Tensor gates = x_proj.new_empty({keep ? steps : 1, batch, 3 * hidden});
  at::Tensor hidden_n = x_proj.new_empty({keep ? steps : 1, batch, hidden});
  at::Tensor outputs = x_proj.new_empty({steps, batch, hidden});
  at::Tensor hh = x_proj.new_empty({batch, 3 * hidden});
  const at::Tensor w_hh_t = w_hh.t();
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t slot = keep ? t : 0;
    const at::Tensor h_prev = t == 0 ? h0 : outputs[t - 1];
    at::mm_out(hh, h_prev, w_hh_t);
    AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "gru_forward", [&] {
      const scalar_t* x = x_proj[t].data_ptr<scalar_t>();
      const scalar_t* hhp = hh.data_ptr<scalar_t>();
      const scalar_t* bias = b_hh.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      scalar_t* g = gates[slot].data_ptr<scalar_t>();
      scalar_t* hn = hidden_n[slot].data_ptr<scalar_t>();
      scalar_t* h = outputs[t].data_ptr<scalar_t>();
      at::parallel_for(0, batch, grain_rows(3 * hidden), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t wide = b * 3 * hidden, row = b * hidden;
          forward_row(x + wide, hhp + wide, bias, hp + row, g + wide, hn + row, h + row, hidden);
        }
      });
    });
  }
  return {gates, hidden_n, outputs};
}

// -> grad_x (T, B, 3H) (the gradient of x_proj), grad_hh (T, B, 3H) (of h_{t-1} W_hh^T + b_hh),
//    dh_0 (B, H)
std::vector<at::Tensor> gru_backward(const at::Tensor& gates, const at::Tensor& hidden_n,
                                     const at::Tensor& outputs, const at::Tensor& h0,
                                     const at::Tensor& w_hh, const at::Tensor& grad_outputs,
                                     const at::Tensor& grad_h_n) {
  const int64_t steps = gates.size(0), batch = gates.size(1), hidden = outputs.size(2);
  const at::Tensor grad_out = grad_outputs.contiguous();
  at::Tensor grad_x = at::empty_like(gates);
  at::Tensor grad_hh = at::empty_like(gates);
  at::Tensor dh = grad_h_n.contiguous().clone();
  for (int64_t t = steps - 1; t >= 0; --t) {
    const at::Tensor h_prev = t == 0 ? h0.contiguous() : outputs[t - 1];
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_backward", [&] {
      const scalar_t* g = gates[t].data_ptr<scalar_t>();
      const scalar_t* hn = hidden_n[t].data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      const scalar_t* go = grad_out[t].data_ptr<scalar_t>();
      scalar_t* d = dh.data_ptr<scalar_t>();
      scalar_t* gx = grad_x[t].data_ptr<scalar_t>();
      scalar_t* ghh = grad_hh[t].data_ptr<scalar_t>();
      at::parallel_for(0, batch, grain_rows(3 * hidden), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t wide = b * 3 * hidden, row = b * hidden;
          backward_row(g + wide, hn + row, hp + row, go + row, d + row, gx + wide, ghh + wide,
                       hidden);
        }
      });
    });
    dh.addmm_(grad_hh[t], w_hh);  // dh_{t-1} = grad_h ⊙ z + grad_hh_t W_hh
  }
  return {grad_x, grad_hh, dh};
}
