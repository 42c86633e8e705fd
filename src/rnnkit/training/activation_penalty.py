"""Activation regularisation (AR) and temporal activation regularisation (TAR) of the last
recurrent layer's output (Merity, McCann & Socher 2017, "Revisiting Activation
Regularization for Language RNNs"; used by AWD-LSTM):

    AR  = α · mean over b, t, j of  (m ⊙ h)[b, t, j]²              the output after dropout
    TAR = β · mean over b, t, j of  (h[b, t+1, j] − h[b, t, j])²   the output before dropout

Both are added to the cross-entropy of a training step only: AR keeps the activations small,
TAR keeps them from jumping between consecutive characters. The logged training loss stays the
cross-entropy alone, so that it compares with runs without them.
"""

from torch import Tensor


def activation_penalty(output: Tensor, dropped: Tensor, ar: float, tar: float) -> Tensor:
    """output, dropped (B, T, H): the last layer's output before and after dropout -> the
    penalty, a scalar (0 when ar = tar = 0)."""
    penalty = output.new_zeros(())
    if ar:
        penalty = penalty + ar * dropped.pow(2).mean()
    if tar and output.shape[1] > 1:
        penalty = penalty + tar * (output[:, 1:] - output[:, :-1]).pow(2).mean()
    return penalty
