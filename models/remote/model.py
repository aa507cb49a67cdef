"""A model served by an OpenAI-compatible engine, behind models/interface.py's ChatModel.

Its name in lists, votes and reports is "SERVED@ENDPOINT" (the served model's name, then the endpoint's), so two
endpoints serving the same name stay apart and nothing confuses it with an in-process adapter.

Multiple choice by likelihood needs log-probabilities of the prompt's tokens, which only some engines give. The
way tried (vLLM's, and what lm-eval's `local-completions` relies on): the server's `/tokenize` applies the model's
chat template to the messages; then one `/v1/completions` request holds, for every option letter, the prompt's
tokens followed by that letter's first token, with `echo` and `logprobs` and no new tokens, and the last echoed
log-probability is the letter's as the next token. A softmax over the item's letters then equals the in-process
softmax over the same letters' logits (a log-probability is the logit minus one constant per position). It is
probed once per model; an engine without it (`transformers serve`, LMDeploy, hosted APIs) scores by generation,
and the report says why.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

from models.interface import Messages, ModelError, PromptFit, Scoring, fit_left
from models.remote.client import OpenAIClient, RemoteError
from models.remote.endpoints import Endpoint
from models.settings import GenerationSettings

ECHO_WAY = "remote: /v1/completions prompt log-probabilities (echo), via the server's /tokenize"


def remote_name(served: str, endpoint: str) -> str:
    return f"{served}@{endpoint}"


class RemoteModel:
    def __init__(self, endpoint: Endpoint, served: str, client: OpenAIClient, parent: str | None = None,
                 max_model_len: int | None = None):
        self.endpoint, self.served, self.client, self.parent = endpoint, served, client, parent
        # vLLM's /v1/models says each model's context (`max_model_len`); other servers do not, and refuse a prompt
        # that is too long with HTTP 400 (a RemoteError with reason "context"), which Evaluate records per item.
        self.max_model_len = max_model_len if isinstance(max_model_len, int) and max_model_len > 0 else None
        self.name = remote_name(served, endpoint.name)
        self.where = endpoint.name
        self._scoring: Scoring | None = None
        self._letter_ids: dict[str, int] = {}
        self._probe_lock = threading.Lock()

    def stream(self, messages: Messages, settings: GenerationSettings,
               stop: threading.Event | None = None) -> Iterator[str]:
        text = ""
        for piece in self.client.stream_chat(self.served, messages, settings, stop):
            text += piece
            yield text

    def generate(self, prompts: Sequence[Messages], settings: GenerationSettings, concurrency: int = 8) -> list[str]:
        """Every prompt's answer, `concurrency` requests in flight (the server batches them itself)."""
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(prompts))),
                                thread_name_prefix="remote-generate") as pool:
            return list(pool.map(lambda p: self.client.chat(self.served, p, settings), prompts))

    # ---- multiple choice by log-probabilities --------------------------------------------------------------
    def scoring(self) -> Scoring:
        with self._probe_lock:
            if self._scoring is None:
                self._scoring = self._probe()
            return self._scoring

    def _probe(self) -> Scoring:
        try:
            self._option_logprobs([{"role": "user", "content": "1+1=?"}], ["A", "B"])
        except RemoteError as exc:
            if exc.reason in ("down", "timeout", "auth"):
                raise  # the server, not the capability: say so rather than quietly switch methods
            return Scoring(None, f"{self.endpoint.name} gives no prompt log-probabilities ({exc})")
        return Scoring(ECHO_WAY)

    def score_options(self, prompts: Sequence[Messages], letters: Sequence[Sequence[str]],
                      concurrency: int = 8) -> list[dict[str, float]]:
        """Each item's letters scored, `concurrency` items in flight as `generate` has (two requests per item, so one
        at a time left the server idle between round trips), in the prompts' order."""
        if self.scoring().way is None:
            raise ModelError(f"{self.name}: {self.scoring().reason}")
        for letter in sorted({letter for item in letters for letter in item}):
            self._letter_id(letter)  # filled here, once, before the threads only read the cache
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(prompts))),
                                thread_name_prefix="remote-score") as pool:
            return list(pool.map(lambda p, item: self._option_logprobs(p, list(item)), prompts, letters))

    def _option_logprobs(self, messages: Messages, letters: list[str]) -> dict[str, float]:
        """Softmax over `letters` of each letter's log-probability as the token after the templated prompt."""
        tokens = self.client.post("/tokenize", {"model": self.served, "messages": messages,
                                                "add_generation_prompt": True}).get("tokens")
        if not isinstance(tokens, list) or not tokens:
            raise RemoteError("malformed", f"{self.endpoint.name}: /tokenize gave no tokens")
        prompts = [tokens + [self._letter_id(letter)] for letter in letters]
        reply = self.client.post("/v1/completions", {"model": self.served, "prompt": prompts, "max_tokens": 0,
                                                     "echo": True, "logprobs": 1, "temperature": 0.0})
        try:
            choices = sorted(reply["choices"], key=lambda c: c.get("index", 0))
            logprobs = [float(c["logprobs"]["token_logprobs"][len(tokens)]) for c in choices]
        except (KeyError, IndexError, TypeError, ValueError):
            raise RemoteError("malformed", f"{self.endpoint.name}: /v1/completions with echo gave no prompt "
                                           "log-probabilities") from None
        if len(logprobs) != len(letters):
            raise RemoteError("malformed", f"{self.endpoint.name}: {len(logprobs)} choices for {len(letters)} prompts")
        top = max(logprobs)
        weights = [math.exp(lp - top) for lp in logprobs]
        return {letter: w / sum(weights) for letter, w in zip(letters, weights)}

    def _letter_id(self, letter: str) -> int:
        """The first token of the letter written alone, as the in-process scoring takes it."""
        if letter not in self._letter_ids:
            tokens = self.client.post("/tokenize", {"model": self.served, "prompt": letter,
                                                    "add_special_tokens": False}).get("tokens")
            if not isinstance(tokens, list) or not tokens:
                raise RemoteError("malformed", f"{self.endpoint.name}: /tokenize gave no tokens for {letter!r}")
            self._letter_ids[letter] = int(tokens[0])
        return self._letter_ids[letter]

    # ---- prompts longer than the context -------------------------------------------------------------------
    def context_limit(self) -> int | None:
        return self.max_model_len

    def fit_prompts(self, prompts: Sequence[Messages], max_new_tokens: int) -> list[PromptFit]:
        """Prompts cut from the left to fit `max_model_len`, counted by the server's /tokenize (which applies the
        model's chat template). Without both, prompts go as they are and the server refuses those too long."""
        fits = []
        for messages in prompts:
            if self.max_model_len is None:
                fits.append(PromptFit(list(messages), None, None, None))
                continue
            try:
                kept, tokens, kept_n = fit_left(list(messages), self._count, self.max_model_len - max_new_tokens)
            except RemoteError as exc:
                if exc.reason in ("down", "timeout", "auth"):
                    raise
                self.max_model_len = None  # no /tokenize here: leave it to the server's own refusal
                fits.append(PromptFit(list(messages), None, None, None))
                continue
            fits.append(PromptFit(kept, tokens, kept_n, self.max_model_len))
        return fits

    def _count(self, messages: Messages) -> int:
        tokens = self.client.post("/tokenize", {"model": self.served, "messages": messages,
                                                "add_generation_prompt": True}).get("tokens")
        if not isinstance(tokens, list):
            raise RemoteError("malformed", f"{self.endpoint.name}: /tokenize gave no tokens")
        return len(tokens)

    # ---- what reports record -------------------------------------------------------------------------------
    def prompt_lengths(self, prompts: Sequence[Messages]) -> list[int]:
        # Only for ordering the work (longest first): characters are enough, and cost no request.
        return [sum(len(m.get("content", "")) for m in p) for p in prompts]

    def identity(self) -> dict:
        """The endpoint's URL and the served model's name; never the key (nor the name of its variable)."""
        return {"model": self.name, "base": self.parent, "adapter": None, "endpoint": self.endpoint.name,
                "endpoint_url": self.endpoint.url, "served_model": self.served}
