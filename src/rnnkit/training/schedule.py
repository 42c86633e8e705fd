"""The learning-rate schedule: linear warm-up, then cosine decay to min_lr at the horizon."""

import math


def learning_rate(step: int, peak: float, minimum: float, warmup: int, horizon: int) -> float:
    """The learning rate of step `step` (0-based) of a run that ends at step `horizon`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= horizon:
        return minimum
    progress = (step - warmup) / max(1, horizon - warmup)
    return minimum + 0.5 * (peak - minimum) * (1 + math.cos(math.pi * progress))
