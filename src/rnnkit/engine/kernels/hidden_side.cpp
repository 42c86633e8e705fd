// The hidden side W_hh h_{t-1} + b_hh of a time loop whose steps autograd records, with the
// gradient of W_hh and b_hh made by one matrix product for the whole sequence instead of one
// per step.
//
// Recorded as at::linear, each step's backward makes its own ∂L/∂W_hh = g_tᵀ h_{t-1}, a product
// of only b rows, and autograd adds it into the running sum: an LSTM at T 128 makes 128 small
// products and 128 additions of a (4H, H) matrix per sequence. Here each step's node keeps g_t
// and h_{t-1} instead (a first-order backward only), and one node that every step's weight
// comes through, which autograd runs after all of them, makes ∂L/∂W_hh = Gᵀ H_prev and
// ∂L/∂b_hh = Σ_rows G in one product over all the steps' rows. The sum is the same; only the
// order of the additions differs. The price is memory during the backward: the kept g_t, which
// autograd would free step by step, and their concatenation, (N, G·H) each, N the rows of all
// steps.
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
c10::intrusive_ptr<KeptGradients> kept_of(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<KeptGradients>(ctx->saved_data["kept"].toCapsule());
}

// The node every step's W_hh and b_hh come through: forward copies them (the copies are what
// the steps use), backward adds the one product over the kept rows to what the steps passed.
// weights: {W_hh} or {W_hh, b_hh} (an absent bias is no input: autograd takes no undefined one).
class WeightsOfTheLoop : public torch::autograd::Function<WeightsOfTheLoop> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList weights,
                               c10::intrusive_ptr<torch::CustomClassHolder> kept) {
    ctx->saved_data["kept"] = c10::IValue::make_capsule(kept);
    ctx->set_materialize_grads(false);
    variable_list copies;
    for (const at::Tensor& weight : weights) copies.push_back(weight.clone());
    return copies;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto kept = kept_of(ctx);
    std::vector<at::Tensor> g, h;
    {
      std::lock_guard<std::mutex> guard(kept->lock);
      g.swap(kept->grads);
      h.swap(kept->inputs);
    }
    if (!g.empty()) {
      at::Tensor all_g = at::cat(g), all_h = at::cat(h);  // (N, G·H), (N, H)
      if (ctx->needs_input_grad(0)) {
        at::Tensor product = all_g.t().mm(all_h);  // ∂L/∂W_hh = Σ_t g_tᵀ h_{t-1}
        grads[0] = grads[0].defined() ? grads[0] + product : product;
      }
      if (grads.size() > 1 && ctx->needs_input_grad(1)) {
        at::Tensor sum = all_g.sum(0);  // ∂L/∂b_hh = Σ_t Σ_rows g_t
        grads[1] = grads[1].defined() ? grads[1] + sum : sum;
      }
    }
    grads.emplace_back();  // kept: not a tensor
    return grads;
  }
};

// One step's W_hh h_{t-1} + b_hh: the gradient of h_{t-1} now, the weights' kept for later.
// inputs: {h_{t-1}, W_hh} or {h_{t-1}, W_hh, b_hh}.
class HiddenSideOfAStep : public torch::autograd::Function<HiddenSideOfAStep> {
 public:
  static at::Tensor forward(AutogradContext* ctx, at::TensorList inputs,
                            c10::intrusive_ptr<torch::CustomClassHolder> kept) {
    ctx->saved_data["kept"] = c10::IValue::make_capsule(kept);
    ctx->saved_data["bias"] = inputs.size() > 2;
    ctx->save_for_backward({inputs[0], inputs[1]});
    at::NoGradGuard plain;
    return inputs.size() > 2 ? at::linear(inputs[0], inputs[1], inputs[2])
                             : at::linear(inputs[0], inputs[1]);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &h = saved[0], &w_hh = saved[1], &g = grads[0];
    const bool bias = ctx->saved_data["bias"].toBool();
    const bool wants_w = ctx->needs_input_grad(1), wants_b = bias && ctx->needs_input_grad(2);
    variable_list found(bias ? 4 : 3);  // the gradients of h, W_hh, (b_hh,) kept
    if (ctx->needs_input_grad(0)) found[0] = g.mm(w_hh);
    if (at::GradMode::is_enabled()) {  // a graph of the gradient: recorded, as linear's
      if (wants_w) found[1] = g.t().mm(h);
      if (wants_b) found[2] = g.sum(0);
    } else if (wants_w || wants_b) {
      auto kept = kept_of(ctx);
      std::lock_guard<std::mutex> guard(kept->lock);
      kept->grads.push_back(g);
      kept->inputs.push_back(h);
    }
    return found;
  }
};

}  // namespace rnnkit

HiddenSide::HiddenSide(const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh,
                       bool defer) {
  weights_.push_back(w_hh);
  if (b_hh.has_value()) weights_.push_back(*b_hh);
  if (defer) {
    kept_ = c10::make_intrusive<rnnkit::KeptGradients>();
    // (a TensorList, so that autograd sees each weight as an input)
    weights_ = rnnkit::WeightsOfTheLoop::apply(at::TensorList(weights_), kept_);
  }
}

at::Tensor HiddenSide::operator()(const at::Tensor& h) const {
  if (kept_) {
    std::vector<at::Tensor> inputs{h};
    inputs.insert(inputs.end(), weights_.begin(), weights_.end());
    return rnnkit::HiddenSideOfAStep::apply(at::TensorList(inputs), kept_);
  }
  return weights_.size() > 1 ? at::linear(h, weights_[0], weights_[1]) : at::linear(h, weights_[0]);
}
