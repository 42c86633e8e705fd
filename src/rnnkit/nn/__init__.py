"""The neural-network core: the cells' equations and everything that runs them over time.

    equations.py   one time step of each cell, as its equations (the reference)
    cells.py       RNNCell, LSTMCell, GRUCell: one step, torch.nn's interface
    recurrence.py  the time loop over a packed batch, layer by layer
    layers.py      RNN, LSTM, GRU: torch.nn's arguments, parameters and input forms
    stack.py       a layer's stack run on the engine the dispatch chose
    inputs.py      every input form checked and brought to one layout
    trace.py       the record of every step that layer.trace() returns
    dropout.py     variational dropout: one mask per sequence
    conversion.py  to torch.nn's classes and back (to_torch, from_torch, quantize_dynamic)

The engines that run a layer's recurrence beside the reference are in rnnkit.engine.
"""
