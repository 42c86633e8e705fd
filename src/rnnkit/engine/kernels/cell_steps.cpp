// One step of each built-in cell: the equations of rnnkit/cells/rnn.py, lstm.py and gru.py
// written as ATen calls from C++. rnnkit's cells (rnnkit/nn/cells.py) call the *_cell_step
// functions; the layers' step-by-step reference engine (rnnkit/nn/recurrence.py), which has
// every step's input projection already, calls packed_direction (at the end of this file): the
// loop over one direction, packed_loop, whose steps are the *_projected_step functions (any
// other cell's traced step runs in the same loop: traced_steps.cpp).
// rnnkit/engine/dispatch.py (cell_steps) says when these run.
//
// Autograd records each call as it records the Python reference's, so the gradients, second
// order included, are the reference's; what goes is the trip through Python for each of the
// dozen small operations of a step. Where autograd keeps no copy of what is overwritten, the
// gate arithmetic works in place on the matrix products' own memory: unsafe_chunk gives views
// that autograd versions one by one, so an in-place gate does not count as a change of its
// neighbours (no new memory per gate; at B 64, H 64 a step spent most of its time allocating).

#include <ATen/core/grad_mode.h>

#include "loops.h"

namespace {

// Each cell's step from its hidden side W_hh h + b_hh (computed by the caller, and written over).
at::Tensor rnn_step_from(at::Tensor hidden_side, const at::Tensor& x_proj, bool relu) {
  // h' = act(x_proj + W_hh h + b_hh), x_proj = W_ih x + b_ih
  at::Tensor pre_activation = hidden_side.add_(x_proj);
  return relu ? at::relu(pre_activation) : at::tanh(pre_activation);
}

std::vector<at::Tensor> lstm_step_from(at::Tensor hidden_side, const at::Tensor& x_proj,
                                       const at::Tensor& c,
                                       const c10::optional<at::Tensor>& w_hr) {
  // gates = x_proj + W_hh h + b_hh, in the order i, f, g, o
  at::Tensor gates = hidden_side.add_(x_proj);
  std::vector<at::Tensor> ifgo = gates.unsafe_chunk(4, 1);
  at::Tensor i = ifgo[0].sigmoid_();
  at::Tensor f = ifgo[1].sigmoid_();
  at::Tensor g = ifgo[2].tanh_();
  at::Tensor o = ifgo[3].sigmoid_();
  at::Tensor c_next = (f * c).add_(i * g);   // c' = f ⊙ c + i ⊙ g
  at::Tensor h_next = o * at::tanh(c_next);  // h' = o ⊙ tanh(c')
  if (w_hr.has_value()) h_next = at::linear(h_next, *w_hr);  // h' = W_hr (o ⊙ tanh(c'))
  return {h_next, c_next};
}

at::Tensor gru_step_from(at::Tensor hidden_side, const at::Tensor& x_proj, const at::Tensor& h) {
  std::vector<at::Tensor> xs = x_proj.unsafe_chunk(3, 1);       // W_i· x + b_i·
  std::vector<at::Tensor> hs = hidden_side.unsafe_chunk(3, 1);  // W_h· h + b_h·
  at::Tensor r = hs[0].add_(xs[0]).sigmoid_();     // r = σ(x_r + h_r)
  at::Tensor z = hs[1].add_(xs[1]).sigmoid_();     // z = σ(x_z + h_z)
  at::Tensor n = xs[2].add(hs[2].mul(r)).tanh_();  // n = tanh(x_n + r ⊙ h_n)
  return (h - n).mul_(z).add_(n);                  // h' = n + z ⊙ (h − n)
}

}  // namespace

at::Tensor rnn_projected_step(const at::Tensor& x_proj, const at::Tensor& h,
                              const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh,
                              bool relu) {
  return rnn_step_from(at::linear(h, w_hh, b_hh), x_proj, relu);
}

std::vector<at::Tensor> lstm_projected_step(const at::Tensor& x_proj, const at::Tensor& h,
                                            const at::Tensor& c, const at::Tensor& w_hh,
                                            const c10::optional<at::Tensor>& b_hh,
                                            const c10::optional<at::Tensor>& w_hr) {
  return lstm_step_from(at::linear(h, w_hh, b_hh), x_proj, c, w_hr);
}

at::Tensor gru_projected_step(const at::Tensor& x_proj, const at::Tensor& h,
                              const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh) {
  return gru_step_from(at::linear(h, w_hh, b_hh), x_proj, h);
}

at::Tensor rnn_cell_step(const at::Tensor& x, const at::Tensor& h, const at::Tensor& w_ih,
                         const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                         const c10::optional<at::Tensor>& b_hh, bool relu) {
  return rnn_projected_step(at::linear(x, w_ih, b_ih), h, w_hh, b_hh, relu);
}

std::vector<at::Tensor> lstm_cell_step(const at::Tensor& x, const at::Tensor& h,
                                       const at::Tensor& c, const at::Tensor& w_ih,
                                       const at::Tensor& w_hh,
                                       const c10::optional<at::Tensor>& b_ih,
                                       const c10::optional<at::Tensor>& b_hh) {
  return lstm_projected_step(at::linear(x, w_ih, b_ih), h, c, w_hh, b_hh, c10::nullopt);
}

at::Tensor gru_cell_step(const at::Tensor& x, const at::Tensor& h, const at::Tensor& w_ih,
                         const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                         const c10::optional<at::Tensor>& b_hh) {
  return gru_projected_step(at::linear(x, w_ih, b_ih), h, w_hh, b_hh);
}

// The loop of one direction over a packed batch, rnnkit/nn/recurrence.py's run_direction in C++:
// x_proj (N, G·H), the input projection of every step in packed order; batch_sizes: the T sizes
// (non-increasing); initial: the state, each (B, ·); step(x_proj_t, state) -> state. Returns the
// outputs (N, ·) in packed order, then the final state, each (B, ·): a sequence's final state
// is the one after its own last step. Autograd records the steps and the slicing, so the
// gradients are those of the Python loop.
std::vector<at::Tensor> packed_loop(const at::Tensor& x_proj,
                                    const std::vector<int64_t>& batch_sizes,
                                    const std::vector<at::Tensor>& initial, bool reverse,
                                    const PackedStep& step) {
  const int64_t steps = static_cast<int64_t>(batch_sizes.size());
  std::vector<at::Tensor> x_steps = x_proj.split_with_sizes(batch_sizes);
  std::vector<at::Tensor> outputs(steps);
  std::vector<std::vector<at::Tensor>> ended;  // states of sequences that stopped, latest last
  std::vector<at::Tensor> state;
  if (reverse) {  // backwards only the longest sequences run at first; the others join later
    for (const at::Tensor& s : initial) state.push_back(s.narrow(0, 0, batch_sizes[steps - 1]));
  } else {
    state = initial;
  }
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t t = reverse ? steps - 1 - i : i;
    const int64_t size = batch_sizes[t];
    const int64_t running = state[0].size(0);
    if (size < running) {  // forward: sequences size.. ended at step t - 1
      std::vector<at::Tensor> stopped;
      for (at::Tensor& s : state) {
        stopped.push_back(s.narrow(0, size, running - size));
        s = s.narrow(0, 0, size);
      }
      ended.push_back(stopped);
    } else if (size > running) {  // reverse: sequences running.. start at step t
      for (size_t k = 0; k < state.size(); ++k) {
        state[k] = at::cat({state[k], initial[k].narrow(0, running, size - running)});
      }
    }
    state = step(x_steps[t], state);
    outputs[t] = state[0];
  }
  ended.push_back(state);
  // ended holds row blocks from the last rows up; stacking them in reverse restores 0..B-1.
  std::vector<at::Tensor> result{at::cat(outputs)};
  for (size_t k = 0; k < state.size(); ++k) {
    std::vector<at::Tensor> blocks;
    for (auto block = ended.rbegin(); block != ended.rend(); ++block) blocks.push_back((*block)[k]);
    result.push_back(at::cat(blocks));
  }
  return result;
}

// One direction of one layer over a packed batch, every step one of the *_projected_step
// functions: packed_loop with a built-in cell's step. (When nothing needs a gradient,
// rnnkit/engine/dispatch.py routes the call to packed_inference.cpp instead.)
//   kind: a CellKind (loops.h); h0, c0 (LSTM only): (B, ·). Returns the outputs (N, P), the
//   final h and (LSTM) the final c. defer_weight_gradients: as traced_direction's
//   (traced_steps.cpp), W_hh's gradient one product for all steps (hidden_side.cpp).
std::vector<at::Tensor> packed_direction(int64_t kind, const at::Tensor& x_proj,
                                         const std::vector<int64_t>& batch_sizes,
                                         const at::Tensor& h0, const c10::optional<at::Tensor>& c0,
                                         const at::Tensor& w_hh,
                                         const c10::optional<at::Tensor>& b_hh,
                                         const c10::optional<at::Tensor>& w_hr, bool reverse,
                                         bool defer_weight_gradients) {
  const bool lstm = kind == kLstm;
  std::vector<at::Tensor> initial = lstm ? std::vector<at::Tensor>{h0, *c0}
                                         : std::vector<at::Tensor>{h0};
  const HiddenSide hidden_side_of(w_hh, b_hh, defer_weight_gradients);
  auto step = [&](const at::Tensor& x_t, const std::vector<at::Tensor>& state) {
    at::Tensor hidden_side = hidden_side_of(state[0]);
    if (lstm) return lstm_step_from(hidden_side, x_t, state[1], w_hr);
    if (kind == kGru) return std::vector<at::Tensor>{gru_step_from(hidden_side, x_t, state[0])};
    return std::vector<at::Tensor>{rnn_step_from(hidden_side, x_t, kind == kRnnRelu)};
  };
  return packed_loop(x_proj, batch_sizes, initial, reverse, step);
}
