"""The fast paths beside the reference equations (see docs/architecture.md)."""

import torch
from torch import Tensor


def backward_may_come(*tensors: Tensor | None) -> bool:
    """False under torch.no_grad() or when nothing needs a gradient: then a forward loop keeps
    nothing for a backward pass (less memory to touch)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
