"""The loss-curve PNG of a run, drawn from its metrics.csv (matplotlib, imported lazily)."""

import csv
from pathlib import Path


def write_loss_curve(
    metrics_csv: Path, png: Path, ylabel: str = "loss (nats per character)"
) -> None:
    # a Figure of its own, not pyplot: drawing a file never changes the backend of the
    # program that called it (a notebook keeps its inline plots)
    from matplotlib.figure import Figure

    steps, train, val_steps, val = [], [], [], []
    with metrics_csv.open(newline="") as file:
        for row in csv.DictReader(file):
            if row["train_loss"]:  # a task run's dev rows leave it empty
                steps.append(int(row["step"]))
                train.append(float(row["train_loss"]))
            if row["val_loss"]:
                val_steps.append(int(row["step"]))
                val.append(float(row["val_loss"]))
    if not steps:
        return
    figure = Figure(figsize=(7, 4), dpi=100)
    axis = figure.subplots()
    axis.plot(steps, train, linewidth=0.8, alpha=0.7, label="train (per batch)")
    if val:
        axis.plot(val_steps, val, marker="o", linewidth=1.5, label="validation (full pass)")
    axis.set_xlabel("step")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    temporary = png.with_suffix(".tmp.png")
    figure.savefig(temporary)
    temporary.replace(png)
