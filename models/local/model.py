"""The in-process ChatModel: one model of the registry (the base, or one adapter) behind models/interface.py.

Chat's side-by-side panes of in-process models still go to `ModelRegistry.stream` together, as one batch; this
class is what a single model looks like to code that does not care where it runs (Evaluate, the blind test).
"""

from __future__ import annotations

import threading
from typing import Iterator, Sequence

from models.interface import IN_PROCESS, Messages, ModelError, PromptFit, Scoring, fit_left, model_name
from models.settings import GenerationSettings

LOGITS_WAY = "in-process: next-token logits of one forward pass"


def letter_token_ids(tokenizer, letters: Sequence[str]) -> list[int]:
    """The token each option letter starts with when the model writes it as its answer."""
    ids = [tokenizer.encode(letter, add_special_tokens=False)[0] for letter in letters]
    if len(set(ids)) != len(ids):
        raise ModelError(f"the tokenizer gives option letters {', '.join(letters)} the same first token; "
                         "use --method generate with this model")
    return ids


class InProcessModel:
    where = IN_PROCESS

    def __init__(self, registry, adapter: str | None = None):
        self.registry, self.adapter = registry, adapter
        self.name = model_name(adapter, registry.base_name)

    def stream(self, messages: Messages, settings: GenerationSettings,
               stop: threading.Event | None = None) -> Iterator[str]:
        for state in self.registry.stream([(self.adapter, messages)], settings, stop=stop):
            yield state.texts[0]

    def generate(self, prompts: Sequence[Messages], settings: GenerationSettings, concurrency: int = 8) -> list[str]:
        # One batch of len(prompts) rows: the caller sizes batches (Evaluate's batch_size); `concurrency` is a
        # remote knob.
        texts = [self.registry.render(p) for p in prompts]  # rendered here, so the batch is one call's worth
        return self.registry.generate(texts, adapter=self.adapter, settings=settings, batch_size=max(len(texts), 1))

    def scoring(self) -> Scoring:
        return Scoring(LOGITS_WAY)

    def score_options(self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]],
                      concurrency: int = 8) -> list[dict[str, float]]:
        """Each item's letters' probabilities as the next token, softmax over that item's letters only (one batch:
        `concurrency` is a remote knob)."""
        import torch

        logits = self.registry.next_token_logits(list(prompts), self.adapter)
        scores = []
        for row, item_letters in zip(logits, letters):
            ids = letter_token_ids(self.registry.tokenizer, item_letters)
            scores.append(dict(zip(item_letters, torch.softmax(row[ids], dim=-1).tolist())))
        return scores

    def prompt_lengths(self, prompts: Sequence[Messages]) -> list[int]:
        texts = [self.registry.render(p) for p in prompts]
        return [len(ids) for ids in self.registry.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def context_limit(self) -> int | None:
        return self.registry.context_limit()

    def fit_prompts(self, prompts: Sequence[Messages], max_new_tokens: int) -> list[PromptFit]:
        """Each prompt cut from the left (models.interface.fit_left) so that it and `max_new_tokens` fit the base's
        context; counted with the model's own tokenizer and chat template, as `generate` will encode it."""
        limit = self.context_limit()
        lengths = self.prompt_lengths(prompts)
        if limit is None:
            return [PromptFit(list(p), n, n, None) for p, n in zip(prompts, lengths)]
        budget = limit - max_new_tokens
        fits = []
        for messages, n in zip(prompts, lengths):
            if n <= budget:  # the common case costs no second tokenisation
                fits.append(PromptFit(list(messages), n, n, limit))
                continue
            kept, tokens, kept_n = fit_left(list(messages), lambda m: self.prompt_lengths([m])[0], budget)
            fits.append(PromptFit(kept, tokens, kept_n, limit))
        return fits

    def identity(self) -> dict:
        """What the answers depend on: the base reference, and the adapter's source and weights hash."""
        import hashlib
        from pathlib import Path

        base = self.registry.base_name
        if self.adapter is None:
            return {"model": base, "base": base, "adapter": None}
        info = {m.name: m for m in self.registry.models()}.get(self.adapter)
        if info is None:
            raise ModelError(f"unknown model {self.adapter!r}; known: "
                             f"{', '.join(m.name for m in self.registry.models())}")
        weights = sorted(Path(info.source).glob("adapter_model.*")) if Path(info.source).is_dir() else []
        digest = None
        if weights:
            sha = hashlib.sha256()
            with open(weights[0], "rb") as handle:  # chunked: adapters of large models are hundreds of MB
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    sha.update(chunk)
            digest = sha.hexdigest()
        return {"model": self.adapter, "base": base, "adapter": self.adapter, "adapter_source": info.source,
                "adapter_sha256": digest}
