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

Prompts longer than the model's context: `fit_prompts(prompts, max_new_tokens)` says, for each prompt, how many
tokens it has and returns it cut from the left (`fit_left`) so that it and `max_new_tokens` fit the context, or
says that the model's context is unknown (a server that does not say; it then refuses a long prompt itself, a
RemoteError with reason "context").

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
from typing import Callable, Iterator, Protocol, Sequence

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


@dataclass(frozen=True)
class PromptFit:
    """A prompt made to fit a model's context: `messages` to send (None: nothing fits, the item is skipped), its
    length in tokens before (`tokens`) and after (`kept`) the cut, and the context it was fitted to (`limit`, None
    when the model does not say; then nothing is cut and `tokens` is None)."""

    messages: Messages | None
    tokens: int | None
    kept: int | None
    limit: int | None

    @property
    def cut(self) -> bool:
        return self.messages is None or (self.tokens is not None and self.kept is not None and self.kept < self.tokens)


def fit_left(messages: Messages, count: Callable[[Messages], int], budget: int) -> tuple[Messages | None, int, int]:
    """(messages cut from the left so that `count(messages) <= budget`, tokens before, tokens after).

    Only text is cut, never the chat template around it (its special tokens and the generation cue stay): first
    the earliest example turns (user/assistant pairs after the system prompt) go, then the last user turn loses
    characters from its start, so the end of the prompt (the question, the options, the answer cue) is kept. The
    system prompt stays. (None, tokens, 0) when even an empty user turn does not fit.
    """
    tokens = count(messages)
    if tokens <= budget:
        return messages, tokens, tokens
    msgs = list(messages)
    start = 1 if msgs and msgs[0].get("role") == "system" else 0
    while len(msgs) - start >= 3:  # an example pair and the last user turn
        msgs = msgs[:start] + msgs[start + 2:]
        kept = count(msgs)
        if kept <= budget:
            return msgs, tokens, kept
    text = msgs[-1].get("content", "")

    def tail(k: int) -> Messages:
        return msgs[:-1] + [{**msgs[-1], "content": text[len(text) - k:] if k else ""}]

    if count(tail(0)) > budget:
        return None, tokens, 0
    low, high = 0, len(text)  # the longest tail that fits: token counts grow with the tail (binary search)
    while low < high:
        mid = (low + high + 1) // 2
        if count(tail(mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    kept_msgs = tail(low)
    return kept_msgs, tokens, count(kept_msgs)


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

    def context_limit(self) -> int | None: ...

    def fit_prompts(self, prompts: Sequence[Messages], max_new_tokens: int) -> list[PromptFit]: ...
