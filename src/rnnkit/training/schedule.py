"""The learning-rate schedule: linear warm-up, then cosine decay to min_lr at the end of the run.

The end of the run is measured as progress in [0, 1]: step / max_steps, or, with a time budget,
elapsed time / budget. A time-budgeted run therefore decays smoothly to min_lr as its time runs
out, however fast or unevenly its steps go.
"""

import math


def learning_rate(step: int, progress: float, peak: float, minimum: float, warmup: int) -> float:
    """The learning rate of step `step` (0-based), `progress` of the way through the run."""
    cosine = minimum + 0.5 * (peak - minimum) * (1 + math.cos(math.pi * min(1.0, progress)))
    if step < warmup:
        return cosine * (step + 1) / warmup
    return cosine
