"""One browser session's conversations, as plain data (the UI keeps them in gr.State; nothing here is shared).

Side by side: every pane has its own history, because each model answered differently; the user's turns are the
same in all of them. Blind test: a `Battle` between two hidden models, voted on once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from chat.votes import Vote

Messages = list[dict[str, str]]
MAX_PANES = 4


def with_system(system: str, history: Messages, prompt: str | None = None) -> Messages:
    """The messages one model sees: system prompt (when given), its own history, then the new user turn."""
    messages = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
    messages += history
    if prompt is not None:
        messages.append({"role": "user", "content": prompt})
    return messages


def check_selection(models: list[str], usable: list[str]) -> None:
    if not 1 <= len(models) <= MAX_PANES:
        raise ValueError(f"tick between 1 and {MAX_PANES} models (ticked {len(models)})")
    unknown = [m for m in models if m not in usable]
    if unknown:
        raise ValueError(f"model(s) no longer available: {', '.join(unknown)}; press Refresh")


def add_turn(histories: dict[str, Messages], models: list[str], prompt: str,
             answers: list[str]) -> dict[str, Messages]:
    """A new dict (histories of models not shown are kept, so un-ticking and re-ticking a model loses nothing)."""
    updated = dict(histories)
    for model, answer in zip(models, answers):
        updated[model] = [*histories.get(model, []), {"role": "user", "content": prompt},
                          {"role": "assistant", "content": answer}]
    return updated


def drop_last_turn(histories: dict[str, Messages], models: list[str]) -> tuple[dict[str, Messages], str | None]:
    """Remove the last exchange of each shown model (for Regenerate); returns the prompt to ask again."""
    updated, prompt = dict(histories), None
    for model in models:
        history = histories.get(model, [])
        if len(history) >= 2 and history[-2]["role"] == "user":
            prompt = prompt or history[-2]["content"]
            updated[model] = history[:-2]
    return updated, prompt


@dataclass(frozen=True)
class Battle:
    """Two models behind "Model A" and "Model B"; names are revealed only after the vote."""

    model_a: str
    model_b: str
    history_a: tuple = ()
    history_b: tuple = ()
    voted: str = ""  # the outcome once voted
    settings: dict = field(default_factory=dict)

    @property
    def last_prompt(self) -> str:
        users = [m["content"] for m in self.history_a if m["role"] == "user"]
        return users[-1] if users else ""

    def answered(self, prompt: str, answer_a: str, answer_b: str, settings: dict) -> "Battle":
        turn = ({"role": "user", "content": prompt},)
        return replace(self, history_a=self.history_a + turn + ({"role": "assistant", "content": answer_a},),
                       history_b=self.history_b + turn + ({"role": "assistant", "content": answer_b},),
                       settings=settings)

    def vote(self, outcome: str, voter: str, base_model: str) -> Vote:
        if self.voted:
            raise ValueError("this battle has been voted on already; start a new battle")
        if not self.history_a:
            raise ValueError("ask a question and read both answers before voting")
        return Vote(model_a=self.model_a, model_b=self.model_b, outcome=outcome, prompt=self.last_prompt,
                    answer_a=self.history_a[-1]["content"], answer_b=self.history_b[-1]["content"],
                    voter=voter, base_model=base_model, settings=dict(self.settings),
                    conversation_a=list(self.history_a), conversation_b=list(self.history_b))


def new_battle(models: list[str], rng: random.Random | None = None) -> Battle:
    """Two different models at random, in random order (so the base is not always on the left)."""
    if len(set(models)) < 2:
        raise ValueError("a blind test needs at least two models: train an adapter in the Fine-tune tab first")
    a, b = (rng or random.SystemRandom()).sample(sorted(set(models)), 2)
    return Battle(a, b)
