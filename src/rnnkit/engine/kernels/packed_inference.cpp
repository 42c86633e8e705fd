// One direction of one layer over a packed batch when nothing needs a gradient (inference):
// packed_direction (cell_steps.cpp) hands its loop here. The steps are the same equations
// (rnnkit/nn/equations.py); what changes is how much memory each step touches:
//   - one matrix product per step, into one buffer reused by every step (at::addmm_out);
//   - one pass over the gates that applies the nonlinearities, updates the state in place and
//     writes h_t into the outputs, instead of a dozen ATen calls that each allocate;
//   - the state is one (B, H) buffer: in packed order the sequences that have ended are the
//     last rows, so a row that stops being updated already holds that sequence's final state,
//     and backwards a row that joins late still holds its initial state.
// No projection (proj_size): packed_direction keeps its own loop for that.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "loops.h"

namespace {

// LSTM, one row: a = x_proj_t + b_hh + W_hh h_{t-1} (i, f, g, o). Updates c, h; writes h_t.
template <typename scalar_t>
void lstm_row(const scalar_t* __restrict__ a, scalar_t* __restrict__ c, scalar_t* __restrict__ h,
              scalar_t* __restrict__ out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t i = sigmoid(a[j]);
    const scalar_t f = sigmoid(a[H + j]);
    const scalar_t g = std::tanh(a[2 * H + j]);
    const scalar_t o = sigmoid(a[3 * H + j]);
    const scalar_t cell = f * c[j] + i * g;        // c' = f ⊙ c + i ⊙ g
    const scalar_t hidden = o * std::tanh(cell);   // h' = o ⊙ tanh(c')
    c[j] = cell;
    h[j] = hidden;
    out[j] = hidden;
  }
}

// GRU, one row: x = x_proj_t (r, z, n), hh = W_hh h_{t-1} + b_hh (r, z, n). Updates h.
template <typename scalar_t>
void gru_row(const scalar_t* __restrict__ x, const scalar_t* __restrict__ hh,
             scalar_t* __restrict__ h, scalar_t* __restrict__ out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t r = sigmoid(x[j] + hh[j]);                   // r = σ(x_r + h_r)
    const scalar_t z = sigmoid(x[H + j] + hh[H + j]);           // z = σ(x_z + h_z)
    const scalar_t n = std::tanh(x[2 * H + j] + r * hh[2 * H + j]);  // n = tanh(x_n + r ⊙ h_n)
    const scalar_t hidden = n + z * (h[j] - n);                 // h' = n + z ⊙ (h − n)
    h[j] = hidden;
    out[j] = hidden;
  }
}

// Vanilla RNN, one row: a = x_proj_t + b_hh + W_hh h_{t-1}. h' = tanh(a) or relu(a).
template <typename scalar_t>
void rnn_row(const scalar_t* __restrict__ a, bool relu, scalar_t* __restrict__ h,
             scalar_t* __restrict__ out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t hidden = relu ? relu_keeping_nan(a[j]) : std::tanh(a[j]);
    h[j] = hidden;
    out[j] = hidden;
  }
}

template <typename scalar_t>
void run(int64_t kind, const at::Tensor& x_proj, const std::vector<int64_t>& batch_sizes,
         const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh, bool reverse,
         at::Tensor& outputs, at::Tensor& h, at::Tensor& c) {
  const int64_t steps = static_cast<int64_t>(batch_sizes.size());
  const int64_t H = h.size(1), G = x_proj.size(1);
  const bool gru = kind == kGru;
  // The LSTM's and the RNN's b_hh sits beside b_ih, so it joins x_proj once; the GRU's n block
  // is scaled by r, so its b_hh goes into each step's product.
  at::Tensor x = (!gru && b_hh.has_value()) ? x_proj.add(*b_hh) : x_proj.contiguous();
  at::Tensor recurrent = at::empty({batch_sizes.empty() ? 0 : batch_sizes[0], G}, x.options());
  const at::Tensor w_t = w_hh.t();
  std::vector<int64_t> offsets(steps + 1, 0);
  for (int64_t t = 0; t < steps; ++t) offsets[t + 1] = offsets[t] + batch_sizes[t];

  for (int64_t i = 0; i < steps; ++i) {
    const int64_t t = reverse ? steps - 1 - i : i;
    const int64_t size = batch_sizes[t];
    at::Tensor x_t = x.narrow(0, offsets[t], size);
    at::Tensor product = recurrent.narrow(0, 0, size);
    if (gru) {
      if (b_hh.has_value()) {
        at::addmm_out(product, *b_hh, h.narrow(0, 0, size), w_t);
      } else {
        at::mm_out(product, h.narrow(0, 0, size), w_t);
      }
    } else {
      at::addmm_out(product, x_t, h.narrow(0, 0, size), w_t);
    }
    const scalar_t* xs = x_t.const_data_ptr<scalar_t>();
    const scalar_t* ps = product.const_data_ptr<scalar_t>();
    scalar_t* hs = h.data_ptr<scalar_t>();
    scalar_t* cs = kind == kLstm ? c.data_ptr<scalar_t>() : nullptr;
    scalar_t* os = outputs.data_ptr<scalar_t>() + offsets[t] * H;
    at::parallel_for(0, size, grain_rows(G), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        if (kind == kLstm) {
          lstm_row(ps + b * G, cs + b * H, hs + b * H, os + b * H, H);
        } else if (gru) {
          gru_row(xs + b * G, ps + b * G, hs + b * H, os + b * H, H);
        } else {
          rnn_row(ps + b * G, kind == kRnnRelu, hs + b * H, os + b * H, H);
        }
      }
    });
  }
}

}  // namespace

std::vector<at::Tensor> packed_inference(int64_t kind, const at::Tensor& x_proj,
                                         const std::vector<int64_t>& batch_sizes,
                                         const at::Tensor& h0, const c10::optional<at::Tensor>& c0,
                                         const at::Tensor& w_hh,
                                         const c10::optional<at::Tensor>& b_hh, bool reverse) {
  const int64_t total = x_proj.size(0);
  at::Tensor outputs = at::empty({total, h0.size(1)}, x_proj.options());
  at::Tensor h = h0.contiguous().clone();
  at::Tensor c = kind == kLstm ? c0->contiguous().clone() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "packed_inference", [&] {
    run<scalar_t>(kind, x_proj, batch_sizes, w_hh, b_hh, reverse, outputs, h, c);
  });
  if (kind == kLstm) return {outputs, h, c};
  return {outputs, h};
}
