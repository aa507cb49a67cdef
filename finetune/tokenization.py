"""Conversations -> token ids with labels that train only the assistant turns; packing; batch collators.

Each conversation is rendered with the tokenizer's own chat template (ChatML when the model has none) and cut into
alternating prompt / answer segments by rendering growing prefixes of it. Segments are tokenised one by one and
concatenated, exactly as at inference time, where the prompt (with the generation prompt) is tokenised on its own and
the model then produces the answer tokens: training and generation see the same token boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from finetune.demo_model import CHATML_TEMPLATE
from finetune.formats import Conversation, DataError

IGNORE_INDEX = -100  # label value the loss skips (the default ignore_index of torch's cross entropy)


class TemplateError(DataError):
    """The chat template does not render a conversation as a prefix of its continuation (a data problem to the UI)."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    line: int = 0
    truncated: bool = False

    @property
    def n_trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass
class EncodeStats:
    conversations: int = 0
    truncated: int = 0
    dropped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason): no answer token left
    tokens: int = 0
    trained_tokens: int = 0


def ensure_chat_template(tokenizer) -> bool:
    """Give a base model without a template ChatML (what Qwen uses). Returns True if it had to."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = CHATML_TEMPLATE
    return True


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def segments(tokenizer, conversation: Conversation) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, trained) pieces: prompts untrained, each assistant turn trained.

    An assistant piece runs from after the generation prompt to the end of the turn, so it includes the template's
    end-of-turn marker (e.g. "<|im_end|>\\n"): the model must learn to stop.
    """
    messages = conversation.as_dicts()
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:i], add_generation_prompt=True)
        full = render(tokenizer, messages[: i + 1])
        eos = tokenizer.eos_token
        if done and eos and done.endswith(eos) and not prompt.startswith(done) and prompt.startswith(done[:-len(eos)]):
            # Phi-3 closes a whole conversation with eos, absent when another turn follows: it ends the last answer
            # only, and earlier answers end with their end-of-turn marker (<|end|>) as the template renders them.
            pieces[-1], done = (pieces[-1][0][:-len(eos)], True), done[:-len(eos)]
        if not full.startswith(prompt):
            raise TemplateError(f"line {conversation.line}: the chat template's generation prompt for turn {i} is "
                                "not how it renders the start of that answer")
        if not prompt.startswith(done):  # the template rewrites earlier turns once more follow
            return _final_segments(tokenizer, messages, conversation.line)
        pieces += [(prompt[len(done):], False), (full[len(prompt):], True)]
        done = full
        if _unterminated(tokenizer, full[len(prompt):], message["content"]):
            pieces.append((tokenizer.eos_token, True))
    return [(text, trained) for text, trained in _move_stops(pieces, tokenizer.eos_token) if text]


def _final_segments(tokenizer, messages: list[dict], line: int) -> list[tuple[str, bool]]:
    """For templates that render earlier turns differently once more turns follow (Qwen3 drops the thinking block
    of earlier answers): the conversation as the template renders it whole, which is what the model sees when it
    answers the last turn. Earlier answers are found in it by their text, in order, and trained with the
    end-of-turn marker their own turn renders after them; the last answer is trained as it is generated."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = render(tokenizer, messages[:last], add_generation_prompt=True)
    full = render(tokenizer, messages[: last + 1])
    pieces: list[tuple[str, bool]] = []
    cursor = done = 0
    for i, message in enumerate(messages[:last]):
        at = prompt.find(message["content"], cursor)
        end = at + len(message["content"])
        tail = _answer_tail(tokenizer, messages, i) if message["role"] == "assistant" else ""
        if at < 0 or not prompt.startswith(tail, end):
            raise TemplateError(f"line {line}: the chat template rewrites turn {i} when later turns follow, in a "
                                "way the trained text cannot be found in; train on single-turn rows instead")
        if message["role"] == "assistant":
            pieces += [(prompt[done:at], False), (prompt[at:end + len(tail)], True)]
            done = end + len(tail)
        cursor = end + len(tail)
    pieces += [(prompt[done:], False), (full[len(prompt):], True)]
    if _unterminated(tokenizer, full[len(prompt):], messages[last]["content"]):
        pieces.append((tokenizer.eos_token, True))
    return [(text, trained) for text, trained in _move_stops(pieces, tokenizer.eos_token) if text]


def _answer_tail(tokenizer, messages: list[dict], i: int) -> str:
    """What the template puts after assistant turn i's text when that turn is the last (its end-of-turn marker)."""
    answer = render(tokenizer, messages[: i + 1])[len(render(tokenizer, messages[:i], add_generation_prompt=True)):]
    at = answer.rfind(messages[i]["content"])
    return answer[at + len(messages[i]["content"]):] if at >= 0 else answer


def _unterminated(tokenizer, answer: str, content: str) -> bool:
    """The template ends an assistant turn with nothing after the content (GLM-4: the next turn's <|user|>, its eos
    token, is what stops a reply). Trained as rendered, the model would never learn to stop, so the eos token is
    trained after such an answer (as LLaMA-Factory's `efficient_eos` does)."""
    eos = tokenizer.eos_token
    return bool(eos) and eos not in answer and answer.rstrip().endswith(content.rstrip())


def _move_stops(pieces: list[tuple[str, bool]], eos: str | None) -> list[tuple[str, bool]]:
    """An eos appended after an answer that the next turn's prompt starts with anyway is taken from that prompt:
    the tokens stay the template's own rendering, with the stop now trained."""
    out: list[tuple[str, bool]] = []
    for i, (text, trained) in enumerate(pieces):
        appended = trained and text == eos and i > 0 and pieces[i - 1][1]
        if appended and i + 1 < len(pieces) and pieces[i + 1][0].startswith(eos):
            pieces[i + 1] = (pieces[i + 1][0][len(eos):], False)
        out.append((text, trained))
    return out


def encode(tokenizer, conversation: Conversation, cutoff_len: int) -> Encoded:
    input_ids: list[int] = []
    labels: list[int] = []
    for text, trained in segments(tokenizer, conversation):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if trained else [IGNORE_INDEX] * len(ids)
    truncated = len(input_ids) > cutoff_len
    return Encoded(input_ids[:cutoff_len], labels[:cutoff_len], conversation.line, truncated)


def encode_all(tokenizer, conversations: list[Conversation], cutoff_len: int) -> tuple[list[Encoded], EncodeStats]:
    """Encode and count; a conversation cut so short that no answer token is left is dropped and reported."""
    stats = EncodeStats()
    rows = []
    for conversation in conversations:
        enc = encode(tokenizer, conversation, cutoff_len)
        stats.conversations += 1
        stats.truncated += enc.truncated
        if enc.n_trained == 0:
            stats.dropped.append((conversation.line, f"no answer token left within cutoff_len={cutoff_len}"))
            continue
        stats.tokens += len(enc.input_ids)
        stats.trained_tokens += enc.n_trained
        rows.append(enc)
    return rows, stats


# ---------------------------------------------------------------------------------------------------------------
# Packing


@dataclass
class Packed:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]


def pack(rows: list[Encoded], pack_len: int) -> list[Packed]:
    """Best-fit-decreasing bin packing of whole conversations into rows of at most pack_len tokens.

    position_ids restart at 0 for each conversation. With no attention mask, transformers reads those restarts and
    builds a block-diagonal causal mask, so no token attends across a conversation boundary. Each conversation's
    first label is ignored too, so the last token of one never learns to predict the first of the next.
    """
    import bisect

    order = sorted(range(len(rows)), key=lambda i: -len(rows[i].input_ids))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (space left, bin index), sorted: the tightest fit is found by bisect
    for i in order:
        need = len(rows[i].input_ids)
        j = bisect.bisect_left(free, (need, -1))
        if j < len(free):
            space, b = free.pop(j)
        else:
            space, b = pack_len, len(bins)
            bins.append([])
        bins[b].append(i)
        bisect.insort(free, (space - need, b))
    packed = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in members:
            row = rows[i]
            ids += row.input_ids
            labels += [IGNORE_INDEX] + row.labels[1:]
            positions += list(range(len(row.input_ids)))
        packed.append(Packed(ids, labels, positions))
    return packed


# ---------------------------------------------------------------------------------------------------------------
# Collators (right padding: training never generates, and the loss ignores the padding labels)


class PadCollator:
    """The plain path: pad each batch to its longest row, with an attention mask."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        ids, labels, mask = [], [], []
        for f in features:
            gap = longest - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad] * gap)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * gap)
            mask.append([1] * len(f["input_ids"]) + [0] * gap)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


class PackedCollator:
    """Packed rows: no attention mask (it would switch off the block-diagonal mask built from position_ids).

    The padding of a shorter row becomes one more "conversation" of its own (positions restart at 0, labels
    ignored): causal attention means no real token ever sees it.

    use_cache=False is part of the batch on purpose: models default it to config.use_cache (True), and with a KV
    cache present transformers skips the packed-sequence detection, so every conversation would silently attend to
    the ones before it in the row (measured: logits off by 0.6 on a tiny model; identical with the flag).
    """

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        ids, labels, positions = [], [], []
        for f in features:
            gap = longest - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad] * gap)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * gap)
            positions.append(list(f["position_ids"]) + list(range(gap)))
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "position_ids": torch.tensor(positions),
            "use_cache": False,
        }


class ListDataset:
    """A map-style dataset of plain dicts (torch's DataLoader needs only __len__ and __getitem__)."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def as_features(rows: list[Encoded] | list[Packed]) -> list[dict]:
    if rows and isinstance(rows[0], Packed):
        return [{"input_ids": r.input_ids, "labels": r.labels, "position_ids": r.position_ids} for r in rows]
    return [{"input_ids": r.input_ids, "labels": r.labels} for r in rows]
