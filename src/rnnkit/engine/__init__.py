"""The engines beside the reference equations; engine/dispatch.py picks one per call.

dispatch.py      the routing table: which engine and loop run each call
registered.py    the built-in cells' fast paths, by definition
fused.py         torch's own RNN kernels (torch's code)
lstm.py, gru.py, rnn.py   hand-written BPTT as autograd Functions
ops.py           their time loops as custom operators; compiled.py builds the C++ ones
second_order.py  the differentiable backward that second-order gradients take
scan.py          a linear cell's recurrence solved at once (sequential or parallel scan)
cell_loop.py     any cell's loop as one custom operator (torch.compile, torch.export)
traced.py        any cell's step traced into ATen operators that a C++ loop runs (eager CPU)
planes.py        a traced step's ATen operators as operations on (B, H) planes
derive.py        an elementwise step and its derived backward as two programs of plane operations
derived_loop.py  those programs run by C++ loops, one pass a step, as an autograd Function
bptt.py          what the hand-written BPTT of every cell shares
"""
