"""The one interface every model answers through, whether it runs in this process or behind an HTTP endpoint.

Chat and Evaluate hold `ChatModel`s and never ask which kind: in-process (`models.local.InProcessModel`: the
shared base with its LoRA adapters) or remote (`models.remote.RemoteModel`: an OpenAI-compatible server such as
vLLM, SGLang, LMDeploy, `transformers serve` or a hosted API). Three things a model does:

- `stream(messages, settings, stop)`: one conversation's answer, yielded as the text so far;
- `generate(prompts, settings, concurrency)`: many conversations' answers (batched in process, N requests in
  flight remotely);
- `score_options(prompts, letters, concurrency)`: for multiple choice, each option letter's probability as the next
  token (softmax over the item's own letters). A model that cannot (a server without log-probabilities) says so with
  `scoring()`, which also names the way it scores, for reports.

Naming the base model: one rule, two positions.
- Where a model is *named* (the page's choices, API values sent by the page and gradio_client, votes, reports,
  `ModelEntry.name`, `EvalConfig.models`), the base is named by its reference, `base_name` (e.g. "demo" or
  "Qwen/Qwen2.5-0.5B-Instruct"); `None` there is accepted as "the base" too (configs and CLIs written before the
  base's name is known).
- Where an *adapter* is meant (`InProcessModel.adapter`, the generator's rows, `adapter=` arguments), `None` is
  "no adapter": the base alone.
Names become adapters in one function, `adapter_of`, and back in `model_name`; nothing else compares a name with
the base's. (peft's own word for "no adapter" in a mixed batch, "__base__", stays inside models/local/generator.py.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

from models.settings import GenerationSettings

Messages = list[dict[str, str]]
IN_PROCESS = "in-process"  # `where` of the models this process loads itself


def adapter_of(name: str | None, base_name: str | None) -> str | None:
    """The adapter a model name runs: None for the base (named by its reference, or None), else the name."""
    return None if name is None or name == base_name else name


def model_name(adapter: str | None, base_name: str) -> str:
    """The name pages and reports show for an adapter position: the base's reference for None."""
    return base_name if adapter is None else adapter


class ModelError(ValueError):
    """A model cannot be used or failed to answer; the message names the model (and endpoint) and says why."""


@dataclass(frozen=True)
class Scoring:
    """How a model scores multiple-choice options: `way` for reports, or None with the `reason` it cannot."""

    way: str | None
    reason: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """A model as lists show it: its unique name, where it runs, and a short label for the UI."""

    name: str
    where: str  # IN_PROCESS, or the endpoint's name
    kind: str  # "base", "adapter" or "remote"
    label: str
    compatible: bool = True
    reason: str = ""
    decoding: str = ""  # an in-process base once loaded: how greedy answers are decoded


class ChatModel(Protocol):
    name: str
    where: str

    def stream(self, messages: Messages, settings: GenerationSettings,
               stop: threading.Event | None = None) -> Iterator[str]: ...

    def generate(self, prompts: Sequence[Messages], settings: GenerationSettings,
                 concurrency: int = 8) -> list[str]: ...

    def scoring(self) -> Scoring: ...

    def score_options(self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]],
                      concurrency: int = 8) -> list[dict[str, float]]: ...

    def identity(self) -> dict: ...

    def prompt_lengths(self, prompts: Sequence[Messages]) -> list[int]: ...
