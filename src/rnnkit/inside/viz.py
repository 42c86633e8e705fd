"""One self-contained HTML page: a text coloured by a chosen cell's activation.

Every character is one ``<span>`` (escaped with :func:`html.escape`, newlines kept by
``white-space: pre-wrap``), its background blue for negative and red for positive values, its
``title`` the exact value (the hover). A picker lists the cells shown: the ones asked for with
``--cell``, else the most interesting ones (the best cell for each feature of
rnnkit.inside.features that varies over the text, then the cells whose activation varies
most). The page has no external resource: the styles and the small script that recolours on a
pick are inline, and the activations of the listed cells are embedded as JSON.
"""

import html
import json

import numpy as np

from rnnkit.errors import UsageError
from rnnkit.inside.cell_ranking import rank_cells
from rnnkit.inside.features import FEATURES, feature_values

MAX_CHARACTERS = 20_000  # a page stays responsive; longer texts are cut (and the page says so)


def interesting_cells(activations: np.ndarray, text: str, count: int = 8):
    """[(layer, cell, description)]: the best cell per feature, then the most varying ones."""
    chosen: list[tuple[int, int, str]] = []
    for name in FEATURES:
        feature = feature_values(text, name)
        if feature.std() == 0:
            continue  # e.g. no quotes in this text
        best = rank_cells(activations, feature, name)[0]
        if (best.layer, best.cell) not in {(k, c) for k, c, _ in chosen}:
            sign = "+" if best.sign > 0 else "-"
            chosen.append((best.layer, best.cell, f"{name} {sign}{best.score:.2f}"))
    spread = activations.std(axis=1)  # (L, H)
    for flat in np.argsort(-spread, axis=None):
        if len(chosen) >= count:
            break
        layer, cell = (int(i) for i in np.unravel_index(flat, spread.shape))
        if (layer, cell) not in {(k, c) for k, c, _ in chosen}:
            chosen.append((layer, cell, f"std {spread[layer, cell]:.2f}"))
    return chosen


def _colour(value: float) -> str:
    """-1 blue, 0 white, +1 red."""
    v = max(-1.0, min(1.0, value))
    fade = int(255 * (1 - abs(v)))
    return f"rgb(255,{fade},{fade})" if v >= 0 else f"rgb({fade},{fade},255)"


def render(text: str, activations: np.ndarray, cells, title: str, value: str) -> str:
    """The page. activations (L, T, H); cells [(layer, cell, description)], the first shown."""
    if not cells:
        raise UsageError("no cell to show")
    layers, _, width = activations.shape
    for layer, cell, _ in cells:
        if not (0 <= layer < layers and 0 <= cell < width):
            raise UsageError(
                f"cell {layer}:{cell} does not exist: this model has {layers} layer(s) of "
                f"{width} cells (give --cell LAYER:CELL with 0 <= CELL < {width})"
            )
    cut = len(text) > MAX_CHARACTERS
    text = text[:MAX_CHARACTERS]
    series = {
        f"{layer}:{cell}": [round(float(v), 3) for v in activations[layer, : len(text), cell]]
        for layer, cell, _ in cells
    }
    first = series[f"{cells[0][0]}:{cells[0][1]}"]
    spans = "".join(
        f'<span style="background:{_colour(v)}" title="{v:+.3f}">{html.escape(ch)}</span>'
        for ch, v in zip(text, first, strict=True)
    )
    options = "".join(
        f'<option value="{layer}:{cell}">layer {layer} cell {cell} ({html.escape(note)})</option>'
        for layer, cell, note in cells
    )
    note = f"<p>The text was cut to its first {MAX_CHARACTERS:,} characters.</p>" if cut else ""
    data = json.dumps(series).replace("</", "<\\/")  # never close the script early
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
#text {{ font-family: monospace; white-space: pre-wrap; line-height: 1.5; }}
#text span {{ border-radius: 2px; }}
.legend span {{ padding: 0 0.6em; font-family: monospace; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>Value: {html.escape(value)} (after reading each character). Hover a character for its
value. <span class="legend"><span style="background:{_colour(-1)}">-1</span><span
style="background:{_colour(0)}">0</span><span style="background:{_colour(1)}">+1</span></span>
</p>
<p><label>Cell: <select id="cell">{options}</select></label></p>
{note}
<div id="text">{spans}</div>
<script>
const series = {data};
function colour(v) {{
  v = Math.max(-1, Math.min(1, v));
  const fade = Math.floor(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255,${{fade}},${{fade}})` : `rgb(${{fade}},${{fade}},255)`;
}}
document.getElementById("cell").addEventListener("change", (event) => {{
  const values = series[event.target.value];
  const spans = document.getElementById("text").children;
  for (let i = 0; i < spans.length; i++) {{
    spans[i].style.background = colour(values[i]);
    spans[i].title = (values[i] >= 0 ? "+" : "") + values[i].toFixed(3);
  }}
}});
</script>
</body>
</html>
"""
