// The compiled loops as a Python module (its name is chosen by rnnkit/engine/compiled.py).

#include <torch/extension.h>

#include "loops.h"

void bind_traced_steps(pybind11::module& m);  // traced_steps.cpp
void bind_derived_steps(pybind11::module& m);  // derived_steps.cpp

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward, "LSTM forward time loop");
  m.def("lstm_backward", &lstm_backward, "LSTM backward time loop");
  m.def("gru_forward", &gru_forward, "GRU forward time loop");
  m.def("gru_backward", &gru_backward, "GRU backward time loop");
  m.def("rnn_forward", &rnn_forward, "Elman RNN forward time loop");
  m.def("rnn_backward", &rnn_backward, "Elman RNN backward time loop");
  m.def("rnn_projected_step", &rnn_projected_step, "one Elman RNN step from W_ih x + b_ih");
  m.def("lstm_projected_step", &lstm_projected_step, "one LSTM step from W_ih x + b_ih");
  m.def("gru_projected_step", &gru_projected_step, "one GRU step from W_ih x + b_ih");
  m.def("packed_direction", &packed_direction, "one direction of a layer over a packed batch");
  m.def("packed_inference", &packed_inference,
        "one direction over a packed batch when nothing needs a gradient");
  m.def("linear_scan_forward", &linear_scan_forward, "h_t = a_t * h_{t-1} + b_t for every t");
  m.def("linear_scan_backward", &linear_scan_backward, "the gradients of linear_scan_forward");
  m.def("rnn_cell_step", &rnn_cell_step, "one Elman RNN cell step (autograd records it)");
  m.def("lstm_cell_step", &lstm_cell_step, "one LSTM cell step (autograd records it)");
  m.def("gru_cell_step", &gru_cell_step, "one GRU cell step (autograd records it)");
  bind_traced_steps(m);
  bind_derived_steps(m);
}
