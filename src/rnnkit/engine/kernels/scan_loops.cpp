// The two time loops of the linear recurrence h_t = a_t ⊙ h_{t-1} + b_t (rnnkit/engine/scan.py
// holds the same loops in Python with the equations). Every feature is its own recurrence, so
// the features are split between threads and each thread walks all T steps of its slice.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "loops.h"

namespace {

// Features per parallel task: a slice walks T steps, so even a small slice is real work.
constexpr int64_t kScanGrain = 2048;

void check_scan_inputs(const at::Tensor& a, const at::Tensor& b, const at::Tensor& h0) {
  TORCH_CHECK(a.is_contiguous() && b.is_contiguous() && h0.is_contiguous(),
              "linear scan: a, b and h0 must be contiguous");
  TORCH_CHECK(a.sizes() == b.sizes() && a.dim() >= 1 && h0.numel() * a.size(0) == a.numel(),
              "linear scan: a and b must be (T, *S) and h0 (*S)");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.scalar_type() == h0.scalar_type(),
              "linear scan: a, b and h0 must have one dtype");
}

}  // namespace

// a, b (T, *S), h0 (*S) -> h (T, *S): h_t = a_t ⊙ h_{t-1} + b_t
at::Tensor linear_scan_forward(const at::Tensor& a, const at::Tensor& b, const at::Tensor& h0) {
  check_scan_inputs(a, b, h0);
  const int64_t steps = a.size(0), features = h0.numel();
  at::Tensor h = at::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "linear_scan_forward", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    const scalar_t* h0p = h0.data_ptr<scalar_t>();
    scalar_t* hp = h.data_ptr<scalar_t>();
    at::parallel_for(0, features, kScanGrain, [&](int64_t begin, int64_t end) {
      const scalar_t* previous = h0p;
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t row = t * features;
        for (int64_t j = begin; j < end; ++j)
          hp[row + j] = ap[row + j] * previous[j] + bp[row + j];
        previous = hp + row;
      }
    });
  });
  return h;
}

// The backward of linear_scan_forward, in one pass backwards in time:
//   g_t = grad_t + a_{t+1} ⊙ g_{t+1}   (g_{T-1} = grad_{T-1})
//   ∂L/∂a_t = g_t ⊙ h_{t-1},  ∂L/∂b_t = g_t,  ∂L/∂h0 = a_0 ⊙ g_0
// a, h (T, *S), h0 (*S), grad (T, *S) -> {∂L/∂a, ∂L/∂b, ∂L/∂h0}
std::vector<at::Tensor> linear_scan_backward(const at::Tensor& a, const at::Tensor& h0,
                                             const at::Tensor& h, const at::Tensor& grad) {
  check_scan_inputs(a, h, h0);
  TORCH_CHECK(grad.is_contiguous() && grad.sizes() == a.sizes() &&
                  grad.scalar_type() == a.scalar_type(),
              "linear scan backward: grad must be a contiguous tensor like a");
  const int64_t steps = a.size(0), features = h0.numel();
  at::Tensor grad_a = at::empty_like(a), g = at::empty_like(a), grad_h0 = at::empty_like(h0);
  if (steps == 0) return {grad_a, g, grad_h0.zero_()};  // no steps: a_0 does not exist
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "linear_scan_backward", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* h0p = h0.data_ptr<scalar_t>();
    const scalar_t* hp = h.data_ptr<scalar_t>();
    const scalar_t* gradp = grad.data_ptr<scalar_t>();
    scalar_t* gap = grad_a.data_ptr<scalar_t>();
    scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gh0p = grad_h0.data_ptr<scalar_t>();
    at::parallel_for(0, features, kScanGrain, [&](int64_t begin, int64_t end) {
      for (int64_t t = steps - 1; t >= 0; --t) {
        const int64_t row = t * features;
        const scalar_t* previous = t == 0 ? h0p : hp + row - features;
        if (t == steps - 1) {
          for (int64_t j = begin; j < end; ++j) gp[row + j] = gradp[row + j];
        } else {
          for (int64_t j = begin; j < end; ++j)
            gp[row + j] = gradp[row + j] + ap[row + features + j] * gp[row + features + j];
        }
        for (int64_t j = begin; j < end; ++j) gap[row + j] = gp[row + j] * previous[j];
      }
      for (int64_t j = begin; j < end; ++j) gh0p[j] = ap[j] * gp[j];
    });
  });
  return {grad_a, g, grad_h0};
}
