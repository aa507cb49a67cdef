"""What a data file becomes before any training: rows read, rejected (line, field, reason), rendered examples with
the trained (assistant) tokens marked, and token counts / truncation under the chosen cutoff."""

from __future__ import annotations

from dataclasses import dataclass, field

from finetune.formats import LoadResult, load_data
from finetune.tokenization import encode_all, segments


@dataclass
class Preview:
    loaded: LoadResult
    examples: list[list[tuple[str, bool]]] = field(default_factory=list)  # (text, trained) pieces per example
    tokens: int = 0
    trained_tokens: int = 0
    truncated: int = 0
    dropped: list[tuple[int, str]] = field(default_factory=list)
    longest: int = 0

    def summary(self) -> str:
        text = self.loaded.summary()
        if self.tokens:
            n = max(1, len(self.loaded.conversations) - len(self.dropped))
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
    result = Preview(loaded)
    if tokenizer is None:
        # No model to render with: show the turns plainly, assistant turns marked as trained.
        result.examples = [[(f"{m.role}: {m.content}\n", m.role == "assistant") for m in c.messages]
                           for c in loaded.conversations[:n_examples]]
        return result
    result.examples = [segments(tokenizer, c) for c in loaded.conversations[:n_examples]]
    rows, stats = encode_all(tokenizer, loaded.conversations, cutoff_len)
    result.tokens, result.trained_tokens = stats.tokens, stats.trained_tokens
    result.truncated, result.dropped = stats.truncated, stats.dropped
    result.longest = max((len(r.input_ids) for r in rows), default=0)
    return result
