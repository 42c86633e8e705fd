"""engine/dispatch.py: the table of what auto picks, and requested engines handing over."""

import pytest
import torch

from rnnkit.engine import dispatch
from rnnkit.engine.dispatch import Call, auto, choose
from rnnkit.engine.registered import REGISTERED

CPU = torch.device("cpu")


def registered(kind: str) -> dict:
    """A layer's kernel and what its fast paths prefer (None: a library cell)."""
    kernel = {"RNN": "rnn_tanh", "LSTM": "lstm", "GRU": "gru"}.get(kind)
    first = kernel is not None and REGISTERED[kernel].torch_kernel_first
    return {"kernel": kernel, "torch_kernel_first": first}


def call(
    kind="GRU", dtype=torch.float32, device=CPU, packed=False, projected=False, recording=False
):
    return Call(dtype=dtype, device=torch.device(device), packed=packed, projected=projected,
                recording=recording, **registered(kind))  # fmt: skip


@pytest.fixture
def state(monkeypatch):
    """Set what the dispatch reads from torch's global state (exporting, compiling, ...)."""

    def set_state(**flags):
        for name in ("exporting", "onnx_or_jit", "compiling", "transforming"):
            value = flags.get(name, False)
            monkeypatch.setattr(dispatch, name, lambda value=value: value)
        autocast = flags.get("autocasting", False)
        monkeypatch.setattr(dispatch, "autocasting", lambda device: autocast)

    set_state()
    return set_state


@pytest.mark.parametrize(
    ("flags", "the_call", "expected"),
    [
        ({}, call(recording=True), "reference"),
        ({"exporting": True}, call(recording=True), "reference"),
        ({"exporting": True}, call(), "fused"),
        ({"onnx_or_jit": True, "exporting": True}, call(), "fused"),
        ({"exporting": True, "compiling": True}, call(), "fused"),  # torch.export runs dynamo
        ({"compiling": True}, call(), "bptt"),  # engine/ops.py: the loops are graph nodes
        ({"compiling": True}, call(kind="LSTM"), "fused"),  # run eagerly (a graph break)
        ({"transforming": True}, call(), "reference"),
        ({"autocasting": True}, call(), "fused"),
        ({}, call(packed=True), "reference"),
        ({}, call(kind="LSTM", projected=True), "fused"),  # float32: torch's kernel
        ({}, call(kind="LSTM", projected=True, dtype=torch.float64), "reference"),
        ({}, call(kind="LSTM", projected=True, packed=True), "reference"),
        ({}, call(dtype=torch.bfloat16), "reference"),
        ({}, call(device="meta"), "reference"),
        ({}, call(kind="LSTM"), "fused"),
        ({}, call(kind="LSTM", dtype=torch.float64), "bptt"),
        ({}, call(kind="GRU"), "bptt"),
        ({}, call(kind="RNN", dtype=torch.float64), "bptt"),
    ],
)
def test_auto_follows_the_table(state, flags, the_call, expected):
    state(**flags)
    assert auto(the_call) == expected


@pytest.mark.parametrize(
    ("requested", "flags", "the_call", "expected"),
    [
        ("bptt", {}, call(kind="LSTM"), "bptt"),  # rnnkit's loops instead of torch's kernel
        ("fused", {}, call(kind="GRU"), "fused"),
        ("reference", {"exporting": True}, call(), "reference"),
        ("bptt", {}, call(packed=True), "reference"),  # cannot: hands over to auto's choice
        ("bptt", {"transforming": True}, call(), "reference"),
        ("bptt", {"exporting": True}, call(), "bptt"),  # torch.export: custom operators
        ("bptt", {"onnx_or_jit": True, "exporting": True}, call(), "fused"),  # ONNX, jit.trace
        ("bptt", {}, call(dtype=torch.float16), "reference"),
        ("fused", {}, call(recording=True), "reference"),
        ("fused", {"transforming": True}, call(kind="LSTM"), "reference"),
        ("fused", {}, call(device="meta"), "reference"),
    ],
)
def test_a_requested_engine_runs_where_it_can_and_hands_over_where_it_cannot(
    state, requested, flags, the_call, expected
):
    state(**flags)
    assert choose(requested, the_call) == expected


def test_the_predicates_read_torchs_state():
    assert not (dispatch.exporting() or dispatch.compiling() or dispatch.transforming())
    assert torch.func.vmap(lambda x: torch.tensor(dispatch.transforming()) + x)(
        torch.zeros(2)
    ).all()
    with torch.autocast("cpu", torch.bfloat16):
        assert dispatch.autocasting(CPU)
    seen = []
    torch.jit.trace(lambda x: seen.append(dispatch.exporting()) or x * 2, torch.zeros(2))
    assert seen[0]


def test_under_compile_only_a_call_off_the_bptt_and_the_scan_runs_eagerly(state):
    state(compiling=True)
    Route = dispatch.Route
    assert not dispatch.runs_eagerly_under_compile("auto", Route("bptt"))
    assert not dispatch.runs_eagerly_under_compile("reference", Route("reference", "python"))
    assert not dispatch.runs_eagerly_under_compile("auto", Route("reference", "scan"))
    assert dispatch.runs_eagerly_under_compile("auto", Route("fused"))
    assert dispatch.runs_eagerly_under_compile("auto", Route("reference", "python"))  # packed
    state(compiling=True, exporting=True)
    assert not dispatch.runs_eagerly_under_compile("auto", Route("fused"))


def path(kind="GRU", dtype=torch.float64, packed=False, **flags):
    fields = {"projected": False, "recording": False, "cpp_steps": True} | flags
    return Call(dtype=dtype, device=CPU, packed=packed, **registered(kind), **fields)


@pytest.mark.parametrize(
    ("the_call", "expected"),
    [
        # a trace that nothing differentiates: torch's kernel, then recomputed from its outputs
        (path(recording=True, needs_gradient=False), "fused, per layer, trace recomputed"),
        (path(recording=True), "reference (python loop), trace recorded"),
        (path(recording=True, probing=True, needs_gradient=False),
         "reference (python loop), trace recorded"),
        (path(recording=True, packed=True, needs_gradient=False),
         "reference (python loop), trace recorded"),
        (path(recording=True, dropout_running=True, needs_gradient=False),
         "reference (python loop), trace recorded"),
        # a cell with no registered fast paths: its own step, whatever else holds
        # (traced into ATen operators that a C++ loop runs, where the C++ steps serve the call)
        (path(kind="ligru"), "reference (traced loop)"),
        (path(kind="ligru", dtype=torch.float32), "reference (traced loop)"),
        (path(kind="ligru", cpp_steps=False), "reference (python loop)"),
        (path(kind="ligru", recording=True, needs_gradient=False),
         "reference (python loop), trace recorded"),
        (path(kind="ligru", variational=True), "reference (traced loop), per layer"),
        # a linear cell: its recurrence by a scan, unless every step is recorded
        (path(kind="mingru", linear=True), "reference (scan loop)"),
        (path(kind="mingru", linear=True, packed=True), "reference (scan loop)"),
        (path(kind="mingru", linear=True, variational=True), "reference (scan loop), per layer"),
        (path(kind="mingru", linear=True, recording=True),
         "reference (python loop), trace recorded"),
        (Call(None, torch.float32, torch.device("cuda"), False, False, False, linear=True),
         "reference (parallel_scan loop)"),
        # the registered cells
        (path(), "bptt"),
        (path(kind="LSTM", dtype=torch.float32), "fused"),
        (path(kind="LSTM", dtype=torch.float32, variational=True), "fused, per layer"),
        (path(kind="LSTM", dtype=torch.float32, variational=True, packed=True),
         "reference (cpp loop), per layer"),
        (path(variational=True), "bptt, per layer"),
        (path(packed=True), "reference (cpp loop)"),
        (path(packed=True, needs_gradient=False), "reference (cpp_inference loop)"),
        (path(kind="LSTM", packed=True, projected=True, needs_gradient=False),
         "reference (cpp loop)"),
        (path(packed=True, cpp_steps=False), "reference (python loop)"),
    ],
)  # fmt: skip
def test_the_routing_table(state, the_call, expected):
    assert dispatch.route("auto", the_call).name == expected


@pytest.mark.parametrize("flag", ["onnx_or_jit", "transforming"])
def test_a_linear_cell_runs_its_step_where_the_scan_operator_cannot_go(state, flag):
    # torch.func's transforms and the exporters of torch's own ops do not know rnnkit's operator
    state(**{flag: True})
    assert dispatch.route("auto", path(kind="mingru", linear=True)).loop == "python"
