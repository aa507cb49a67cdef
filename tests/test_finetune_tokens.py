"""Assistant-only loss masks, truncation, and the packing equivalence test."""

import pytest
import torch

from finetune.formats import Conversation, Message
from finetune.tokenization import IGNORE_INDEX, PackedCollator, as_features, encode, encode_all, pack
from tests.finetune_fixtures import QA


@pytest.fixture(scope="module")
def tok_model(tiny_chat_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model, dtype=torch.float32).eval()
    return tokenizer, model


def conversations():
    """Multi-turn, with a system prompt, of varied lengths: the hard case for both masks and packing."""
    out = []
    for i, (q, a) in enumerate(QA):
        msgs = [Message("system", "你是医学助手。"), Message("user", q), Message("assistant", a)]
        if i % 2:
            msgs += [Message("user", "谢谢"), Message("assistant", "不客气，祝您健康。")]
        out.append(Conversation(tuple(msgs), line=i + 1))
    return out


def test_loss_mask_covers_exactly_the_assistant_turns(tok_model):
    tokenizer, _ = tok_model
    for conv in conversations():
        enc = encode(tokenizer, conv, cutoff_len=512)
        assert tokenizer.decode(enc.input_ids) == tokenizer.apply_chat_template(conv.as_dicts(), tokenize=False)
        trained = [i for i, label in enumerate(enc.labels) if label != IGNORE_INDEX]
        assert all(enc.labels[i] == enc.input_ids[i] for i in trained)
        # The trained tokens, read back in order, are each answer followed by the end-of-turn marker, nothing else.
        answers = [m.content for m in conv.messages if m.role == "assistant"]
        spans, current = [], []
        for i, label in enumerate(enc.labels):
            if label != IGNORE_INDEX:
                current.append(label)
            elif current:
                spans.append(current)
                current = []
        spans += [current] if current else []
        assert [tokenizer.decode(s) for s in spans] == [f"{a}<|im_end|>\n" for a in answers]
        # And the untrained part is the whole prompt: system, user turns, and the generation prompts.
        prompt = tokenizer.decode([t for t, label in zip(enc.input_ids, enc.labels) if label == IGNORE_INDEX])
        assert "你是医学助手。" in prompt and conv.messages[1].content in prompt
        assert prompt.count("<|im_start|>assistant\n") == len(answers)


def test_truncation_is_counted_and_answerless_rows_dropped(tok_model):
    tokenizer, _ = tok_model
    convs = conversations()
    full = [len(encode(tokenizer, c, 10_000).input_ids) for c in convs]
    rows, stats = encode_all(tokenizer, convs, cutoff_len=min(full) - 3)
    assert stats.truncated == len(convs) and all(len(r.input_ids) == min(full) - 3 for r in rows)
    rows, stats = encode_all(tokenizer, convs, cutoff_len=8)  # shorter than any prompt
    assert rows == [] and [line for line, _ in stats.dropped] == [c.line for c in convs]


def test_packing_fits_rows_and_restarts_positions(tok_model):
    tokenizer, _ = tok_model
    rows, _ = encode_all(tokenizer, conversations(), cutoff_len=512)
    longest = max(len(r.input_ids) for r in rows)
    packed = pack(rows, longest * 2)
    assert len(packed) < len(rows) and all(len(p.input_ids) <= longest * 2 for p in packed)
    assert sum(len(p.input_ids) for p in packed) == sum(len(r.input_ids) for r in rows)
    assert sum(p.position_ids.count(0) for p in packed) == len(rows)


def test_packed_loss_equals_mean_unpacked_loss(tok_model):
    """The packing equivalence test: no attention or loss crosses a conversation boundary."""
    tokenizer, model = tok_model
    rows, _ = encode_all(tokenizer, conversations(), cutoff_len=512)
    packed = pack(rows, 2 * max(len(r.input_ids) for r in rows))
    batch = PackedCollator(tokenizer.pad_token_id)(as_features(packed))  # several rows, padded: both paths tested
    with torch.no_grad():
        packed_loss = model(**batch).loss.item()
        total, count = 0.0, 0
        for r in rows:
            labels = torch.tensor([r.labels])
            loss = model(input_ids=torch.tensor([r.input_ids]), labels=labels).loss.item()
            n = int((labels[:, 1:] != IGNORE_INDEX).sum())  # tokens the shifted loss averages over
            total, count = total + loss * n, count + n
    assert packed_loss == pytest.approx(total / count, abs=1e-4)
    # And the same batch with the cache left on (the transformers default) would not be equivalent: guard the fix.
    with torch.no_grad():
        leaky = model(**{**batch, "use_cache": True}).loss.item()
    assert abs(leaky - total / count) > 100 * abs(packed_loss - total / count)
