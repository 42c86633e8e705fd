// The compiled loops as a Python module (its name is chosen by rnnkit/engine/compiled.py).

#include <torch/extension.h>

#include "loops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward, "LSTM forward time loop");
  m.def("lstm_backward", &lstm_backward, "LSTM backward time loop");
  m.def("gru_forward", &gru_forward, "GRU forward time loop");
  m.def("gru_backward", &gru_backward, "GRU backward time loop");
  m.def("rnn_forward", &rnn_forward, "Elman RNN forward time loop");
  m.def("rnn_backward", &rnn_backward, "Elman RNN backward time loop");
}
