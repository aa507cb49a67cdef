"""Small things that make the page read as finished: result boxes that stay out of sight until they hold something,
and table headers in the page's language.

An empty gr.Dataframe shows placeholder headers "1 2 3", an empty plot a blank frame, an empty download box a grey
icon: to a new user that reads as broken. `hide_until_filled` keeps such a box in the DOM but out of sight
(gradio 6's visible="hidden", so its change event still fires) and shows it when a handler fills it.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ui.strings import t, STRINGS


def filled(value) -> bool:
    """Whether a result box's value has something to show (a frame with rows, a plot with points, files)."""
    if value is None:
        return False
    if isinstance(value, pd.DataFrame):
        return not value.empty
    data = getattr(value, "data", None)  # gradio's PlotData, and a Dataframe's {"headers", "data"} payload
    if data is None and isinstance(value, dict):
        data = value.get("data")
    if data is not None:
        return len(data) > 0
    if isinstance(value, (list, tuple, str)):
        return len(value) > 0
    return True


def _show_if_filled(value):
    return gr.update(visible=True if filled(value) else "hidden")


def hide_until_filled(*components, box=None) -> None:
    """Each component starts out of sight and is shown (or hidden again) whenever a handler sets its value. Call
    inside the Blocks, after creating them. `box`: a layout (an Accordion) around one component, hidden with it."""
    for component in components:
        target = box if box is not None else component
        target.visible = "hidden"
        component.change(_show_if_filled, component, target, api_visibility="private", queue=False,
                         show_progress="hidden")


def localize_frame(frame: pd.DataFrame | None, lang: str) -> pd.DataFrame | None:
    """Known column names (`col.<name>` keys in ui/strings.py), also as parts of "model · field" names, in the
    page's language. The English page keeps the field names of the files and reports (the API and the tests read
    those); parts without a key (model and set names, ROUGE/BLEU) stay as they are."""
    if frame is None or lang == "en":
        return frame

    def name(column):
        if not isinstance(column, str):
            return column
        # "demo · answer", "mc_sample · accuracy": each known part in the page's language, names kept
        return " · ".join(t(f"col.{part}", lang) if f"col.{part}" in STRINGS else part for part in column.split(" · "))

    names = {c: name(c) for c in frame.columns if name(c) != c}
    return frame.rename(columns=names) if names else frame
