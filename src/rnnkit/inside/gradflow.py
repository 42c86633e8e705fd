"""Gradient flow through time: how much of a loss at the last step reaches each earlier step.

For a loss L computed from the last step's output only, the gradient reaching step t is

    ∂L/∂h_t = ∂L/∂h_T · Π_{s=t+1..T} ∂h_s/∂h_{s-1}

and for the vanilla RNN each factor is diag(act'(a_s)) W_hh: the same matrix, once per step of
distance. Its size is governed by the spectral radius ρ(W_hh): below 1 the product shrinks
geometrically (vanishing gradient), above 1 it can grow (exploding gradient), tanh's slope ≤ 1
pulling it down. The LSTM's cell path multiplies by the forget gate instead (c_t = f ⊙ c_{t-1} +
...), the GRU's by z: gates the network can hold near 1.

This module measures ‖∂L/∂h_t‖ with the layers' gradient probe (``layer.trace(...,
probe_gradients=True)``: the exact total gradient, through the output and the recurrence),
averaged over a batch, for every layer, as a function of the distance T − t; fits the decay per
step (the slope of log‖∂L/∂h_t‖ against the distance, by least squares); and reports what
global-norm gradient clipping does to it: it multiplies every ∂L/∂h_t by the same factor
min(1, c/‖∂L/∂θ‖), so it caps the size of an exploding gradient but leaves the ratio between
near and far steps, the vanishing, as it was.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.nn.layers import make_layer


@dataclass
class GradientFlow:
    """What one model's gradient does over the distance to the loss."""

    label: str
    norms: Tensor  # (L, T): mean over the batch of ‖∂L/∂h_t‖ for layer l, index = distance T-1-t
    decay_per_step: list[float]  # per layer: the fitted factor per step of distance
    parameter_grad_norm: float  # ‖∂L/∂θ‖ over the recurrent layers' parameters

    def clipped_factor(self, clip_norm: float) -> float:
        """What global-norm clipping at clip_norm multiplies every gradient by."""
        if not math.isfinite(self.parameter_grad_norm) or self.parameter_grad_norm == 0:
            return 1.0
        return min(1.0, clip_norm / self.parameter_grad_norm)


def set_spectral_radius(layer, radius: float) -> None:
    """Scale each H×H block of every W_hh (one per gate) to the spectral radius ``radius``
    (the largest |eigenvalue|)."""
    with torch.no_grad():
        for name, weight in layer.named_parameters():
            if not name.startswith("weight_hh"):
                continue
            hidden = weight.shape[1]
            for block in weight.split(hidden, dim=0):  # (H, H) per gate
                current = torch.linalg.eigvals(block.double()).abs().max().item()
                if current > 0:
                    block.mul_(radius / current)


def fresh_layer(
    kind: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    seed: int,
    spectral_radius: float | None = None,
):
    """A newly initialised layer (torch.nn's initialisation), optionally with W_hh rescaled."""
    torch.manual_seed(seed)
    layer = make_layer(kind, input_size, hidden_size, num_layers).double()
    if spectral_radius is not None:
        set_spectral_radius(layer, spectral_radius)
    return layer


def measure(layer, inputs: Tensor, loss_from_last_output, label: str) -> GradientFlow:
    """inputs in the layer's own layout; loss_from_last_output(h_T of the top layer (B, P)) -> L."""
    layer.zero_grad(set_to_none=True)
    trace = layer.trace(inputs, probe_gradients=True)
    loss = loss_from_last_output(trace.hidden[-1, 0, -1])  # (L, D, T, B, P), whatever the layout
    loss.backward()
    gradient = trace.hidden_grad[:, 0]  # (L, T, B, P), the forward direction
    norms = gradient.norm(dim=-1).mean(dim=-1).flip(-1)  # (L, T), index = distance to the loss
    squares = [p.grad.pow(2).sum() for p in layer.parameters() if p.grad is not None]
    parameter_norm = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return GradientFlow(
        label=label,
        norms=norms.detach(),
        decay_per_step=[decay_per_step(row) for row in norms.detach()],
        parameter_grad_norm=parameter_norm,
    )


def decay_per_step(norms: Tensor) -> float:
    """exp(slope) of the least-squares line through log‖∂L/∂h‖ against distances 1..T-1.

    Below 1: the gradient shrinks by that factor per step; above 1: it grows. Distance 0 (the
    step of the loss itself) is left out; so are zeros and non-finite values (underflow or
    overflow), and NaN is returned when fewer than two points remain.
    """
    distances = torch.arange(len(norms), dtype=torch.float64)[1:]
    values = norms.double()[1:]
    keep = torch.isfinite(values) & (values > 0)
    if int(keep.sum()) < 2:
        return float("nan")
    x, y = distances[keep], values[keep].log()
    x_centred = x - x.mean()
    slope = float((x_centred * (y - y.mean())).sum() / x_centred.pow(2).sum())
    return math.exp(slope)


def fresh_flows(
    cells: list[str],
    spectral_radii: list[float],
    input_size: int = 32,
    hidden_size: int = 64,
    num_layers: int = 1,
    steps: int = 100,
    batch: int = 16,
    seed: int = 0,
    input_scale: float = 1.0,
) -> list[GradientFlow]:
    """The flow of each fresh cell type, then of the vanilla RNN at each spectral radius.

    The inputs are N(0, input_scale²) (small inputs keep tanh in its linear range, where
    ρ(W_hh) alone decides between vanishing and exploding), the loss is ⟨v, h_T⟩ summed over
    the batch with a fixed random unit vector v: it depends on the last step only.
    """
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(steps, batch, input_size, generator=generator, dtype=torch.float64)
    inputs = inputs * input_scale
    direction = torch.randn(hidden_size, generator=generator, dtype=torch.float64)
    direction = direction / direction.norm()

    def loss(last_output: Tensor) -> Tensor:
        return (last_output @ direction).sum()

    flows = []
    for kind in cells:
        layer = fresh_layer(kind, input_size, hidden_size, num_layers, seed)
        flows.append(measure(layer, inputs, loss, kind.upper()))
    for radius in spectral_radii:
        layer = fresh_layer("rnn", input_size, hidden_size, num_layers, seed, radius)
        flows.append(measure(layer, inputs, loss, f"RNN ρ={radius:g}"))
    return flows


def trained_flow(run_dir: Path, steps: int = 100, batch: int = 16, seed: int = 0) -> GradientFlow:
    """The flow in a trained character model: the loss is the cross-entropy of the character
    after a window of `steps` validation characters, read from the last step's output."""
    from rnnkit.errors import UsageError
    from rnnkit.training.run import load_trained_model, validation_ids

    model, config, vocabulary, _ = load_trained_model(run_dir)
    model = model.double()
    ids = validation_ids(run_dir, config, vocabulary)
    if len(ids) < steps + 2:
        raise UsageError(
            f"{run_dir}: the validation text has {len(ids)} characters, fewer than "
            f"--steps {steps} + 2; use a smaller --steps"
        )
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - steps - 1, (batch,), generator=generator).tolist()
    windows = torch.stack(
        [torch.from_numpy(ids[s : s + steps + 1].astype("int64")) for s in starts]
    )  # (B, T+1)
    inputs = model.embedding(windows[:, :steps]).detach()  # (B, T, E)
    layer = model.rnn
    if not layer.batch_first:
        inputs = inputs.transpose(0, 1)

    def loss(last_output: Tensor) -> Tensor:
        return F.cross_entropy(model.head(last_output), windows[:, steps], reduction="sum")

    return measure(layer, inputs, loss, f"{run_dir.name} ({config.cell.upper()})")


def format_report(flows: list[GradientFlow], clip_norm: float) -> str:
    """One line per model and layer: decay per step, the gradient at distance 10/50/T-1 as a
    fraction of distance 0, ‖∂L/∂θ‖ and what clipping does to it."""
    lines = [
        f"{'model':<18} {'layer':>5} {'decay/step':>10} {'d=10':>9} {'d=50':>9} "
        f"{'d=T-1':>9} {'|dL/dθ|':>9} {'clip ' + format(clip_norm, 'g'):>9}"
    ]
    for flow in flows:
        factor = flow.clipped_factor(clip_norm)
        for layer, row in enumerate(flow.norms):
            reference = float(row[0]) if float(row[0]) > 0 else float("nan")

            def at(distance: int, row=row, reference=reference) -> str:
                if distance >= len(row):
                    return "-"
                return f"{float(row[distance]) / reference:9.2e}"

            lines.append(
                f"{flow.label:<18} {layer:>5} {flow.decay_per_step[layer]:>10.4f} {at(10)} "
                f"{at(50)} {at(len(row) - 1)} {flow.parameter_grad_norm:9.2e} "
                f"{'×' + format(factor, '.2g'):>9}"
            )
    return "\n".join(lines)


def plot(flows: list[GradientFlow], clip_norm: float, png) -> None:
    """One log-scale PNG: left the cell types, right the RNN at each spectral radius (with the
    clipped gradient dashed where clipping changes it)."""
    # a Figure of its own, not pyplot: drawing a file never changes the backend of the
    # program that called it (a notebook keeps its inline plots)
    from matplotlib.figure import Figure

    cells = [f for f in flows if "ρ=" not in f.label]
    radii = [f for f in flows if "ρ=" in f.label]
    panels = [
        (title, group)
        for title, group in (
            ("cell types and trained runs", cells),
            ("vanilla RNN by spectral radius of W_hh", radii),
        )
        if group
    ]
    figure = Figure(figsize=(6.5 * len(panels), 4.5), dpi=100)
    axes = figure.subplots(1, len(panels))
    axes = [axes] if len(panels) == 1 else list(axes)
    for axis, (title, group) in zip(axes, panels, strict=True):
        for flow in group:
            for layer, row in enumerate(flow.norms):
                label = flow.label if len(flow.norms) == 1 else f"{flow.label} layer {layer}"
                (line,) = axis.semilogy(row.numpy(), label=label)
                factor = flow.clipped_factor(clip_norm)
                if factor < 1:
                    axis.semilogy(
                        (row * factor).numpy(),
                        linestyle="--",
                        color=line.get_color(),
                        label=f"{label}, clipped at {clip_norm:g}",
                    )
        axis.set_title(title)
        axis.set_xlabel("distance to the loss (steps)")
        axis.set_ylabel("‖∂L/∂h_t‖ (mean over the batch)")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(png)
