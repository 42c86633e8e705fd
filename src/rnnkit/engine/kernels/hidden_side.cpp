// The hidden side W_hh h_{t-1} + b_hh of a time loop whose steps autograd records, with the
// gradient of W_hh and b_hh made by one matrix product for the whole sequence instead of one
// per step.
//
// Recorded as at::linear, each step's backward makes its own ∂L/∂W_hh = g_tᵀ h_{t-1}, a product
// of only b rows, and autograd adds it into the running sum: at B 32, H 256 that is 128 small
// products and 128 additions of a (4H, H) matrix per sequence. Here each step's node keeps g_t
// and h_{t-1} instead (a first-order backward only), and one node that every step's weight
// comes through, which autograd runs after all of them, makes ∂L/∂W_hh = Gᵀ H_prev and
// ∂L/∂b_hh = Σ_rows G in one product over all the steps' rows. The sum is the same; only the
// order of the additions differs.
//
// When a graph of the gradient is being built (create_graph, second order), each step makes
// its own gradients with recorded operations, as at::linear's backward would, and the node
// passes them through: every order stays exact.

#include <torch/extension.h>

#include <mutex>
#include <vector>

#include "loops.h"

namespace rnnkit {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the steps' backward nodes keep for the one product: g_t = ∂L/∂(hidden side of step t)
// and h_{t-1}, (b_t, G·H) and (b_t, H), b_t the step's batch size (a packed batch's shrinks).
struct KeptGradients : torch::CustomClassHolder {
  std::mutex lock;
  std::vector<at::Tensor> grads;
  std::vector<at::Tensor> inputs;
};

// An autograd node holds it in its saved data as a capsule (an IValue of any C++ object).
c10::intrusive_ptr<KeptGradients> kept_of(const c10::IValue& value) {
  return c10::static_intrusive_pointer_cast<KeptGradients>(value.toCapsule());
}

c10::intrusive_ptr<KeptGradients> kept_of(AutogradContext* ctx) {
  return kept_of(ctx->saved_data["kept"]);
}

// The node every step's W_hh and b_hh come through: forward copies them (the copies are what
// the steps use), backward adds the one product over the kept rows to what the steps passed.
class WeightsOfTheLoop : public torch::autograd::Function<WeightsOfTheLoop> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& w_hh,
                               const at::Tensor& b_hh,
                               c10::intrusive_ptr<torch::CustomClassHolder> kept) {
    ctx->saved_data["kept"] = c10::IValue::make_capsule(kept);
    ctx->set_materialize_grads(false);
    if (!b_hh.defined()) return {w_hh.clone()};
    return {w_hh.clone(), b_hh.clone()};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto kept = kept_of(ctx);
    std::vector<at::Tensor> g, h;
    {
      std::lock_guard<std::mutex> guard(kept->lock);
      g.swap(kept->grads);
      h.swap(kept->inputs);
    }
    at::Tensor grad_w = grads[0], grad_b = grads.size() > 1 ? grads[1] : at::Tensor();
    if (!g.empty()) {
      at::Tensor all_g = at::cat(g), all_h = at::cat(h);  // (N, G·H), (N, H)
      if (ctx->needs_input_grad(0)) {
        at::Tensor product = all_g.t().mm(all_h);
        grad_w = grad_w.defined() ? grad_w + product : product;
      }
      if (ctx->needs_input_grad(1)) {
        at::Tensor sum = all_g.sum(0);
        grad_b = grad_b.defined() ? grad_b + sum : sum;
      }
    }
    return {grad_w, grad_b, at::Tensor()};
  }
};

// One step's W_hh h_{t-1} + b_hh: the gradient of h_{t-1} now, the weights' kept for later.
class HiddenSideOfAStep : public torch::autograd::Function<HiddenSideOfAStep> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w_hh,
                            const at::Tensor& b_hh,
                            c10::intrusive_ptr<torch::CustomClassHolder> kept) {
    ctx->saved_data["kept"] = c10::IValue::make_capsule(kept);
    ctx->saved_data["bias"] = b_hh.defined();
    ctx->save_for_backward({h, w_hh});
    at::NoGradGuard plain;
    return b_hh.defined() ? at::linear(h, w_hh, b_hh) : at::linear(h, w_hh);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &h = saved[0], &w_hh = saved[1], &g = grads[0];
    const bool bias = ctx->saved_data["bias"].toBool();
    const bool wants_w = ctx->needs_input_grad(1), wants_b = bias && ctx->needs_input_grad(2);
    at::Tensor grad_h, grad_w, grad_b;
    if (ctx->needs_input_grad(0)) grad_h = g.mm(w_hh);
    if (at::GradMode::is_enabled()) {  // a graph of the gradient: recorded, as linear's
      if (wants_w) grad_w = g.t().mm(h);
      if (wants_b) grad_b = g.sum(0);
    } else if (wants_w || wants_b) {
      auto kept = kept_of(ctx);
      std::lock_guard<std::mutex> guard(kept->lock);
      kept->grads.push_back(g);
      kept->inputs.push_back(h);
    }
    return {grad_h, grad_w, grad_b, at::Tensor()};
  }
};

}  // namespace rnnkit

HiddenSide::HiddenSide(const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh,
                       bool defer)
    : w_hh_(w_hh), b_hh_(b_hh.has_value() ? *b_hh : at::Tensor()) {
  if (defer) {
    kept_ = c10::make_intrusive<rnnkit::KeptGradients>();
    torch::autograd::variable_list weights = rnnkit::WeightsOfTheLoop::apply(w_hh_, b_hh_, kept_);
    w_hh_ = weights[0];
    if (weights.size() > 1) b_hh_ = weights[1];
  }
}

at::Tensor HiddenSide::operator()(const at::Tensor& h) const {
  if (kept_) return rnnkit::HiddenSideOfAStep::apply(h, w_hh_, b_hh_, kept_);
  return b_hh_.defined() ? at::linear(h, w_hh_, b_hh_) : at::linear(h, w_hh_);
}
