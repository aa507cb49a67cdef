"""What a data file becomes before any training: rows read, rejected (line, field, reason), rendered examples with
the trained (assistant) tokens marked, and token counts / truncation under the chosen cutoff."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from finetune.formats import Conversation, LoadResult, load_data
from finetune.tokenization import encode_all, segments
from safeio.problems import ProblemError

# The counts are taken after truncation to cutoff_len tokens, and a token is rarely over 8 characters (Chinese text
# ~1.3 per token, English ~4): text past cutoff_len * 8 characters cannot change them. So the preview never
# tokenises more than that per row (2 MB of text in one cell took 709 MB to tokenise whole).
CHARS_PER_TOKEN_BOUND = 8


# What preview_upload's worker imports before its memory limit is set (safeio.worker.run_limited's preload).
PRELOAD = ("torch", "transformers")


class ModelLoadError(ProblemError, RuntimeError):
    """The tokenizer of the model named for the preview cannot be loaded (unknown id offline, no tokenizer files).
    `str()` is the library's sentence; the code "tokenizer_unavailable" says it in the page's language."""


@dataclass
class Preview:
    loaded: LoadResult
    examples: list[list[tuple[str, bool]]] = field(default_factory=list)  # (text, trained) pieces per example
    tokens: int = 0
    trained_tokens: int = 0
    truncated: int = 0
    dropped: list[tuple[int, str]] = field(default_factory=list)
    longest: int = 0
    kept: int = 0  # conversations kept and rejected rows, also when `loaded` lists only the first few (preview_upload)
    rejected: int = 0

    def summary(self) -> str:
        text = self.loaded.summary()
        if self.tokens:
            n = max(1, self.kept - len(self.dropped))
            text += (f"; {self.tokens} tokens ({self.trained_tokens} trained), {self.tokens / n:.0f} per row on "
                     f"average, longest {self.longest}; {self.truncated} truncated, {len(self.dropped)} dropped")
        return text


def load_tokenizer(model: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    from finetune.demo_model import resolve_model
    from finetune.tokenization import ensure_chat_template

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model), trust_remote_code=trust_remote_code)
    ensure_chat_template(tokenizer)
    return tokenizer


def preview_data(path, data_format: str = "auto", column_map: dict | None = None, tokenizer=None,
                 n_examples: int = 3, cutoff_len: int = 1024, max_samples: int = 0, dedup: bool = True) -> Preview:
    loaded = load_data(path, data_format, column_map, max_samples, dedup)
    result = Preview(loaded, kept=len(loaded.conversations), rejected=len(loaded.rejected))
    conversations = [cut_for_preview(c, cutoff_len) for c in loaded.conversations]
    if tokenizer is None:
        # No model to render with: show the turns plainly, assistant turns marked as trained.
        result.examples = [[(f"{m.role}: {m.content}\n", m.role == "assistant") for m in c.messages]
                           for c in conversations[:n_examples]]
        return result
    result.examples = [segments(tokenizer, c) for c in conversations[:n_examples]]
    rows, stats = encode_all(tokenizer, conversations, cutoff_len)
    result.tokens, result.trained_tokens = stats.tokens, stats.trained_tokens
    result.truncated, result.dropped = stats.truncated, stats.dropped
    result.longest = max((len(r.input_ids) for r in rows), default=0)
    return result


def cut_for_preview(conversation: Conversation, cutoff_len: int) -> Conversation:
    """The conversation cut to what can fall within cutoff_len tokens: each text to the characters left of a budget
    of cutoff_len * CHARS_PER_TOKEN_BOUND, and the turns that start after the budget is spent left out (in
    user/assistant pairs, so it still ends with an answer). Also bounds the template renders: one per turn."""
    budget = max(1, cutoff_len) * CHARS_PER_TOKEN_BOUND
    messages, used = [], 0
    for message in conversation.messages:
        if used >= budget and message.role == "user" and any(m.role == "assistant" for m in messages):
            break
        content = message.content[: max(budget - used, CHARS_PER_TOKEN_BOUND)]
        used += len(content)
        messages.append(replace(message, content=content) if len(content) < len(message.content) else message)
    if len(messages) == len(conversation.messages) and used < budget:
        return conversation
    return Conversation(tuple(messages), conversation.line)


@functools.lru_cache(maxsize=4)
def _cached_tokenizer(model: str):
    return load_tokenizer(model)


def preview_upload(path, data_format: str, column_map: dict | None, model: str, cutoff_len: int,
                   n_examples: int = 3, listed: int = 1000) -> Preview:
    """The app's preview, run in a worker process (safeio.worker.run_limited): parsing and tokenising a user's
    upload there means a bomb costs that process, not the server. Returns only what the page shows (the first
    examples and at most `listed` rejected rows), so the whole data set does not cross back into the app."""
    try:
        tokenizer = _cached_tokenizer(model)
    except (OSError, ValueError) as exc:  # an unknown hub id offline, a directory without a tokenizer
        raise ModelLoadError("tokenizer_unavailable", said=str(exc)[:300], model=model) from None
    result = preview_data(path, data_format, column_map, tokenizer, n_examples, cutoff_len)
    result.loaded.conversations = result.loaded.conversations[:n_examples]
    result.loaded.rejected = result.loaded.rejected[:listed]
    result.dropped = result.dropped[:listed]
    return result
