"""Sphinx extension: a code cell's figure metadata (`"mystnb": {"figure": ...}`) wraps its image output only.

MyST-NB wraps every display output of a cell with figure metadata in a figure of that name and caption. A cell
that shows a plot and a table (or a source listing and a plot) would then make two figures of one name, a
duplicate label that fails `make book` (-W), with the table inside a figure. This renders such a cell's outputs
one at a time and gives the figure metadata to the outputs that hold an image; a cell with a single output, or
without figure metadata, renders exactly as MyST-NB renders it. CONTRIBUTING.md ("Figures") gives the
convention; tests/test_book.py checks that every figure cell has exactly one image output.
"""

from __future__ import annotations

from myst_nb.sphinx_ import SphinxNbRenderer

_render_outputs = SphinxNbRenderer._render_nb_cell_code_outputs


def is_image(output: dict) -> bool:
    """Whether a notebook output is a display (or result) that holds an image, such as a matplotlib figure."""
    return output.get("output_type") in ("display_data", "execute_result") and any(
        mime.startswith("image/") for mime in output.get("data", {})
    )


def _render_figure_outputs(self, token, outputs) -> None:
    metadata = token.meta["metadata"]
    key = self.nb_config.cell_metadata_key
    options = metadata.get(key)
    if len(outputs) < 2 or not isinstance(options, dict) or "figure" not in options:
        return _render_outputs(self, token, outputs)
    without_figure = {**metadata, key: {k: v for k, v in options.items() if k != "figure"}}
    try:
        for output in outputs:
            token.meta["metadata"] = metadata if is_image(output) else without_figure
            _render_outputs(self, token, [output])
    finally:
        token.meta["metadata"] = metadata


def setup(app):
    SphinxNbRenderer._render_nb_cell_code_outputs = _render_figure_outputs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
