# %% [markdown]
# # 8. Packed sequences (패킹) and bidirectional layers (양방향 RNN)
#
# A batch holds sequences of different lengths. To stack them into one tensor, the short ones
# are padded (패딩) with filler at the end. The recurrence does not know which steps are filler:
# it reads them like any other input. Two things go wrong:
#
# 1. the "last" hidden state of a short sequence is taken after the padding, not after its
#    own last element;
# 2. a bidirectional layer's backward direction starts *in the padding* and carries it into
#    every real step.
#
# A `PackedSequence` (`torch.nn.utils.rnn.pack_padded_sequence`) tells the layer each
# sequence's length, so every sequence stops at its own end and the backward direction starts
# at its own last element. rnnkit's layers take packed input exactly as torch.nn's do. Here we
# measure what padding without packing does, and check that packing equals running each
# sequence alone.

# %%
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

import rnnkit

torch.manual_seed(0)
lengths = [7, 4, 2]
sequences = [torch.randn(n, 5, dtype=torch.float64) for n in lengths]
padded = pad_sequence(sequences)  # (T=7, B=3, 5): zeros after each sequence's end
padded.shape

# %% [markdown]
# ## One direction: the final state
# The reference: each sequence run alone, with no padding at all.

# %%
lstm = rnnkit.LSTM(5, 8).double()
alone = [lstm(s.unsqueeze(1))[1][0][0, 0] for s in sequences]  # h at each one's own end

_, (h_padded, _) = lstm(padded)
_, (h_packed, _) = lstm(pack_padded_sequence(padded, lengths))

for i, n in enumerate(lengths):
    padded_gap = (h_padded[0, i] - alone[i]).abs().max().item()
    packed_gap = (h_packed[0, i] - alone[i]).abs().max().item()
    print(f"length {n}: padded differs by {padded_gap:.3f}, packed by {packed_gap:.1e}")

# %%
# packed: every sequence's final state is the one it has alone
assert all(torch.allclose(h_packed[0, i], alone[i], atol=1e-12) for i in range(3))
# padded: right only for the longest sequence, wrong for the ones that were padded
assert torch.allclose(h_padded[0, 0], alone[0], atol=1e-12)
assert all((h_padded[0, i] - alone[i]).abs().max() > 1e-3 for i in (1, 2))

# %% [markdown]
# ## Two directions
# A bidirectional layer runs a second RNN from the last step to the first and concatenates the
# two outputs at each step: $[\overrightarrow{h}_t; \overleftarrow{h}_t]$, so every position
# sees its whole context. Without packing, the backward RNN of a short sequence starts at
# step 7, in the padding, and the filler leaks into every real step's output.

# %%
bi = rnnkit.GRU(5, 8, bidirectional=True).double()
alone_out = [bi(s.unsqueeze(1))[0][:, 0] for s in sequences]  # (n, 16) each

out_padded, _ = bi(padded)
out_packed, _ = bi(pack_padded_sequence(padded, lengths))
out_packed, _ = pad_packed_sequence(out_packed)  # back to (T, B, 16), zeros after the end

i, n = 2, lengths[2]  # the shortest sequence
forward_gap = (out_padded[:n, i, :8] - alone_out[i][:, :8]).abs().max().item()
backward_gap = (out_padded[:n, i, 8:] - alone_out[i][:, 8:]).abs().max().item()
print(
    f"unpacked, length {n}: forward half off by {forward_gap:.1e}, backward half by {backward_gap:.3f}"
)

# %%
# packed = each sequence alone, at every real step, in both directions
for i, n in enumerate(lengths):
    assert torch.allclose(out_packed[:n, i], alone_out[i], atol=1e-12)
    assert n == max(lengths) or out_packed[n:, i].abs().max() == 0  # nothing after the end
# unpacked: the forward half is right (the padding comes after), the backward half is not
assert forward_gap < 1e-12 and backward_gap > 1e-3

# %% [markdown]
# ## The same answers as torch.nn
# rnnkit's layers load torch.nn's weights (the same parameter names), so a packed batch through
# both gives the same numbers.

# %%
reference = torch.nn.GRU(5, 8, bidirectional=True).double()
reference.load_state_dict(bi.state_dict())
theirs, h_theirs = reference(pack_padded_sequence(padded, lengths))
ours, h_ours = bi(pack_padded_sequence(padded, lengths))
assert torch.allclose(theirs.data, ours.data, atol=1e-12) and torch.allclose(
    h_theirs, h_ours, atol=1e-12
)

# %% [markdown]
# `pack_padded_sequence` wants the lengths in decreasing order unless you pass
# `enforce_sorted=False` (then it sorts, and unsorts the results for you). rnnkit's sentiment
# and tagging tasks (`rnnkit task sentiment`, `rnnkit task pos`) train on packed batches.
#
# Next: notebook 9, attention.
