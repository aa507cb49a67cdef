"""Hugging Face ZeroGPU Spaces: a GPU is lent per call, inside functions decorated with `@spaces.GPU(duration=...)`,
for at most a few minutes. Short GPU work (a chat answer, an evaluation batch) fits; a training run does not, so on
ZeroGPU the app refuses to start one and says why, instead of starting a job that would be cut off.

ZeroGPU is on when the `spaces` package is importable and SPACES_ZERO_GPU is set (the variable the `spaces` package
itself reads; Hugging Face sets it on ZeroGPU hardware). Untested on a real Space (none is reachable from here):
tests/test_space.py checks the decision and the refusal with a stand-in `spaces` module.
"""

from __future__ import annotations

import importlib.util
import os

import gradio as gr

from ui.strings import t

CHAT_SECONDS = 60  # one streamed answer
EVAL_SECONDS = 120  # one evaluation batch


def zerogpu_active() -> bool:
    on = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "true", "yes", "on")
    return on and importlib.util.find_spec("spaces") is not None


def gpu(duration: int):
    """`@spaces.GPU(duration=...)` on ZeroGPU, else the function unchanged."""

    def wrap(fn):
        if not zerogpu_active():
            return fn
        import spaces

        return spaces.GPU(duration=duration)(fn)

    return wrap


def refuse_training(lang: str) -> None:
    """Raises the page's message on ZeroGPU (training needs a GPU for longer than one ZeroGPU call allows)."""
    if zerogpu_active():
        raise gr.Error(t("space.zerogpu_no_training", lang), print_exception=False)
