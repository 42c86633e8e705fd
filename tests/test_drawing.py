"""Drawing a PNG never changes the caller's matplotlib backend: a notebook that trains a run
or measures gradient flow keeps its inline plots afterwards."""

import matplotlib
import numpy as np

from rnnkit.inside.alignment import draw_attention
from rnnkit.inside.gradflow import fresh_flows
from rnnkit.inside.gradflow import plot as plot_flows
from rnnkit.inside.longrange import plot as plot_longrange
from rnnkit.training.plot import write_loss_curve


def test_every_png_is_drawn_without_touching_the_backend(tmp_path):
    original = matplotlib.get_backend()
    matplotlib.use("svg")  # not Agg: a function that switched to Agg would show here
    try:
        draw_everything(tmp_path)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(original)
    for name in ("loss.png", "att.png", "g.png", "lr.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name


def draw_everything(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,train_loss,val_loss\n1,4.0,\n2,3.5,3.6\n")
    write_loss_curve(metrics, tmp_path / "loss.png")
    draw_attention(["a", "b"], ["x", "y", "</s>"], np.full((3, 2), 0.5), tmp_path / "att.png")
    plot_flows(
        fresh_flows(["rnn"], [1.5], hidden_size=4, steps=5, batch=2), 1.0, tmp_path / "g.png"
    )
    rows = [
        {"task": "adding", "cell": cell, "delay": delay, "metric": 0.1, "solved": False}
        for cell in ("rnn", "gru")
        for delay in (10, 20)
    ]
    plot_longrange(rows, tmp_path / "lr.png")
