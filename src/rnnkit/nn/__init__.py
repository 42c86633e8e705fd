"""The neural-network core: everything that runs a cell (rnnkit.cells) over time.

    cells.py       RecurrentCell (any cell), RNNCell, LSTMCell, GRUCell: one step
    layers.py      Recurrent (any cell), RNN, LSTM, GRU: torch.nn's arguments, parameters,
                   input forms; asks engine/dispatch.route for the path of each call
    runner.py      a call's layers × directions on its route, the weights prepared once
    recurrence.py  the time loop of one direction over a packed batch (and a linear cell's
                   direction by a scan)
    inputs.py      every input form checked and brought to one layout
    trace.py       the record of every step that layer.trace() returns
    trace_fast.py  that record recomputed from torch's kernel's outputs when nothing will be
                   differentiated
    dropout.py     variational dropout: one mask per sequence
    conversion.py  to torch.nn's classes and back (to_torch, from_torch, quantize_dynamic)

The engines that run a layer's recurrence beside the reference are in rnnkit.engine.
"""
