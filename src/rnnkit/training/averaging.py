"""An exponential moving average of the weights, the model that evaluation and sampling use.

After step t the average is

    avg_t = sum_{i=1..t} w_i * theta_i,   w_i proportional to decay^(t-i),  sum_i w_i = 1

the weights theta_i the optimizer reached after each step, recent steps weighing most (with
decay 0.999, the last 1,000 steps carry 63% of the weight). The weights sum to 1 from the first
step on (the bias correction Adam uses for its moments), so no trace of the random
initialisation is mixed in, unlike the plain recurrence avg <- decay * avg + (1 - decay) * theta
started from the initial weights. Incrementally:

    avg_t = avg_{t-1} + (theta_t - avg_{t-1}) * (1 - decay) / (1 - decay^t)

which at t = 1 copies theta_1. The optimizer keeps training the raw weights; the average only
watches them. A checkpoint holds both, so a resumed run continues the same average exactly.
"""

from contextlib import contextmanager

import torch


class WeightAverage:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = model
        self.parameters = list(model.parameters())  # tied weights appear once
        self.averages = [p.detach().clone() for p in self.parameters]
        self.steps = 0  # how many weight vectors are in the average

    @torch.no_grad()
    def update(self) -> None:
        """Take in the model's current weights (call after each optimizer step)."""
        self.steps += 1
        weight = (1.0 - self.decay) / (1.0 - self.decay**self.steps)
        torch._foreach_lerp_(self.averages, [p.detach() for p in self.parameters], weight)

    @contextmanager
    def swapped_in(self):
        """Inside the block the model holds the averaged weights; the raw ones come back after."""
        if self.steps == 0:  # nothing averaged yet: the raw weights are the average
            yield
            return
        with torch.no_grad():
            raw = [p.detach().clone() for p in self.parameters]
            for parameter, average in zip(self.parameters, self.averages, strict=True):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, saved in zip(self.parameters, raw, strict=True):
                    parameter.copy_(saved)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The model's state_dict with the averaged weights in place of the raw ones."""
        averaged = {id(p): a for p, a in zip(self.parameters, self.averages, strict=True)}
        state = self.model.state_dict(keep_vars=True)
        return {name: averaged.get(id(value), value).detach() for name, value in state.items()}

    @torch.no_grad()
    def load_state_dict(self, weights: dict[str, torch.Tensor], steps: int) -> None:
        """Restore an average saved by `state_dict` (names as in the model's state_dict)."""
        names = {id(p): name for name, p in self.model.named_parameters()}
        for parameter, average in zip(self.parameters, self.averages, strict=True):
            average.copy_(weights[names[id(parameter)]])
        self.steps = steps
