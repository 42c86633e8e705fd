// Any cell's step, run by a C++ time loop: the step is traced once into a list of ATen operators
// (rnnkit/engine/traced.py makes the list from the cell's own Python step with make_fx), and
// traced_direction runs the list at every step through the dispatcher, as packed_direction
// (cell_steps.cpp) runs a built-in cell's step. Autograd records every operator as it records
// the cell's own step, so the gradients, second order included, are the definition's; what goes
// is the trip through Python for each operation of each step.

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <torch/extension.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "loops.h"

namespace {

// How one argument of an operator is given (rnnkit/engine/traced.py writes the same codes).
enum ArgumentKind : int64_t {
  kSlot = 0,         // a value computed earlier in the step, or an input
  kNone = 1,         // None
  kInt = 2,          // an int (also a dtype or a layout, which travel as ints)
  kFloat = 3,        // a float
  kBool = 4,         // a bool
  kInts = 5,         // a list of ints
  kTensor = 6,       // a constant tensor
  kIntNumber = 7,    // a Python int where the schema takes a Tensor (x * 2): a wrapped number
  kFloatNumber = 8,  // a Python float where the schema takes a Tensor (x * 0.5)
  kSlots = 9,        // a list of earlier tensors
};

struct Operation {
  c10::OperatorHandle handle;
  std::vector<c10::IValue> arguments;  // constants, with an empty IValue where a slot goes
  std::vector<int64_t> slots;          // per argument: the slot it reads, or -1
  std::vector<std::vector<int64_t>> slot_lists;  // per argument: a kSlots list, else empty
  // (return index, element index or -1, slot): where each used result is kept
  std::vector<std::tuple<int64_t, int64_t, int64_t>> outputs;
};

}  // namespace

class TracedStep {
 public:
  TracedStep(int64_t slot_count, bool has_hidden_side, std::vector<int64_t> result_slots)
      : slot_count_(slot_count), has_hidden_side_(has_hidden_side),
        result_slots_(std::move(result_slots)) {}

  // One operator of the step; kinds[k] says how argument k is given (ArgumentKind), and the
  // k-th entries of the other lists hold its value (unused entries are ignored).
  void add(const std::string& name, const std::string& overload,
           const std::vector<int64_t>& kinds, const std::vector<int64_t>& slots,
           const std::vector<int64_t>& ints, const std::vector<double>& floats,
           const std::vector<std::vector<int64_t>>& int_lists,
           const std::vector<at::Tensor>& tensors,
           const std::vector<std::tuple<int64_t, int64_t, int64_t>>& outputs) {
    auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), overload.c_str());
    Operation operation{handle, {}, {}, {}, outputs};
    for (size_t k = 0; k < kinds.size(); ++k) {
      c10::IValue value;
      int64_t slot = -1;
      std::vector<int64_t> slot_list;
      switch (kinds[k]) {
        case kSlot: slot = slots[k]; break;
        case kNone: break;
        case kInt: value = ints[k]; break;
        case kFloat: value = floats[k]; break;
        case kBool: value = ints[k] != 0; break;
        case kInts: value = c10::IValue(int_lists[k]); break;
        case kTensor: value = tensors[k]; break;
        case kIntNumber:
        case kFloatNumber: {
          // as Python's argument parser wraps it: a 0-dim tensor that does not decide the
          // result's dtype (x * 0.5 stays float32)
          at::Tensor number = at::scalar_to_tensor(
              kinds[k] == kIntNumber ? c10::Scalar(ints[k]) : c10::Scalar(floats[k]));
          number.unsafeGetTensorImpl()->set_wrapped_number(true);
          value = number;
          break;
        }
        case kSlots: slot_list = int_lists[k]; break;
        default: TORCH_CHECK(false, "unknown argument kind ", kinds[k]);
      }
      operation.arguments.push_back(value);
      operation.slots.push_back(slot);
      operation.slot_lists.push_back(slot_list);
    }
    operations_.push_back(std::move(operation));
  }

  // One step: x_proj (b, G·H), hidden_side (b, G_h·H) or undefined, the state, the cell's own
  // parameters -> the new state.
  std::vector<at::Tensor> run(const at::Tensor& x_proj,
                              const c10::optional<at::Tensor>& hidden_side,
                              const std::vector<at::Tensor>& state,
                              const std::vector<at::Tensor>& extra) const {
    TORCH_CHECK(hidden_side.has_value() == has_hidden_side_,
                "this traced step was made ", has_hidden_side_ ? "with" : "without",
                " a hidden side (W_hh h + b_hh)");
    std::vector<c10::IValue> slots(slot_count_);
    int64_t next = 0;
    slots[next++] = x_proj;
    if (has_hidden_side_) slots[next++] = *hidden_side;
    for (const at::Tensor& s : state) slots[next++] = s;
    for (const at::Tensor& e : extra) slots[next++] = e;
    torch::jit::Stack stack;
    for (const Operation& operation : operations_) {
      stack.clear();
      for (size_t k = 0; k < operation.arguments.size(); ++k) {
        if (operation.slots[k] >= 0) {
          stack.push_back(slots[operation.slots[k]]);
        } else if (!operation.slot_lists[k].empty()) {
          c10::List<at::Tensor> list;
          for (int64_t slot : operation.slot_lists[k]) list.push_back(slots[slot].toTensor());
          stack.push_back(std::move(list));
        } else {
          stack.push_back(operation.arguments[k]);
        }
      }
      operation.handle.callBoxed(&stack);
      for (const auto& [result, element, slot] : operation.outputs) {
        const c10::IValue& value = stack[result];
        slots[slot] = element < 0 ? value : c10::IValue(value.toTensorList().get(element));
      }
    }
    std::vector<at::Tensor> next_state;
    for (int64_t slot : result_slots_) next_state.push_back(slots[slot].toTensor());
    return next_state;
  }


 private:
  int64_t slot_count_;
  bool has_hidden_side_;
  std::vector<int64_t> result_slots_;
  std::vector<Operation> operations_;
};

// One direction of one layer over a packed batch with a traced step: packed_loop
// (cell_steps.cpp) with the hidden side W_hh h + b_hh computed from h before each step when
// w_hh is given. x_proj (N, G·H) in packed order; initial: each (B, ·). Returns the outputs
// (N, ·) and the final state, each (B, ·). defer_weight_gradients: autograd records the loop
// (backward mode only) and W_hh's gradient is to be one product for all steps (HiddenSide).
std::vector<at::Tensor> traced_direction(const TracedStep& step, const at::Tensor& x_proj,
                                         const std::vector<int64_t>& batch_sizes,
                                         const std::vector<at::Tensor>& initial,
                                         const c10::optional<at::Tensor>& w_hh,
                                         const c10::optional<at::Tensor>& b_hh,
                                         const std::vector<at::Tensor>& extra, bool reverse,
                                         bool defer_weight_gradients) {
  c10::optional<HiddenSide> hidden_side_of;
  if (w_hh.has_value()) hidden_side_of.emplace(*w_hh, b_hh, defer_weight_gradients);
  return packed_loop(x_proj, batch_sizes, initial, reverse,
                     [&](const at::Tensor& x_t, const std::vector<at::Tensor>& state) {
                       c10::optional<at::Tensor> hidden_side;
                       if (hidden_side_of.has_value()) hidden_side = (*hidden_side_of)(state[0]);
                       return step.run(x_t, hidden_side, state, extra);
                     });
}

void bind_traced_steps(pybind11::module& m) {
  pybind11::class_<TracedStep, std::shared_ptr<TracedStep>>(m, "TracedStep")
      .def(pybind11::init<int64_t, bool, std::vector<int64_t>>())
      .def("add", &TracedStep::add, "append one operator of the step")
      .def("run", &TracedStep::run, "one step: (x_proj, hidden side, state, extra) -> state");
  m.def("traced_direction", &traced_direction,
        "one direction of a layer over a packed batch, each step a traced cell step");
}
