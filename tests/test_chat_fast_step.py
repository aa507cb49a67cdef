"""chat/fast_step.py against the model's own forward: the same logits, bit for bit, step after step, for Qwen2 and
Llama shapes (with and without grouped-query attention), left-padded and unpadded batches, with per-row LoRA
adapters; with chat/row_matmul.py's other layout, logits equal to the last bits and the same greedy answers; and the
models it must leave to the full forward."""

import copy
import threading

import pytest
import torch

from models.local import row_matmul
from models.local.batched_lora import batched_lora
from models.local.decode import greedy_decode
from models.local.fast_step import FastStep
from chat.settings import GenerationSettings

STEPS = 12


@pytest.fixture(autouse=True)
def same_products_as_the_forward(monkeypatch):
    """Bit-for-bit comparisons need F.linear's layout everywhere; the test of the other layout turns it back on."""
    monkeypatch.setattr(row_matmul, "enabled", False)


def tiny(kind: str, kv_heads: int = 2, **extra):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    shape = dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=kv_heads, max_position_embeddings=256, attn_implementation="sdpa", **extra)
    config_cls, model_cls = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}[kind]
    torch.manual_seed(3)
    model = model_cls(config_cls(**shape)).eval()
    with torch.no_grad():  # larger weights than the default init, so that the logits are far from uniform
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    return model


def with_adapters(model):
    """The model under peft with two random LoRA adapters on every projection."""
    from peft import LoraConfig, get_peft_model

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets), adapter_name="one")
    peft_model.add_adapter("two", LoraConfig(r=2, lora_alpha=3, target_modules=targets[:4]))  # scaling 1.5: not folded
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return peft_model.eval()


def batch(padded: bool):
    ids = torch.randint(3, 300, (3, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    if padded:
        mask[0, :4] = 0  # left padding, as the registry pads
        mask[2, :1] = 0
        ids = ids.masked_fill(mask == 0, 0)
    return ids, mask


def compare_steps(model, ids, mask, exact: bool = True):
    """Prompt through the model's forward, then STEPS steps both ways, each fed the full forward's greedy token."""
    from transformers import DynamicCache

    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1]
        fast = FastStep(model, copy.deepcopy(cache), mask, STEPS + 1)
        position = positions[:, -1:]
        for _ in range(STEPS):
            token, position = logits.argmax(-1), position + 1
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], -1)
            logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                           past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
            step = fast(token, position)
            if exact:
                assert torch.equal(step, logits)
            else:
                assert torch.allclose(step, logits, rtol=1e-4, atol=1e-4)
                assert torch.equal(step.argmax(-1), logits.argmax(-1))


@pytest.mark.parametrize("kind,kv_heads", [("qwen2", 2), ("llama", 2), ("llama", 4)])
@pytest.mark.parametrize("padded", [False, True])
def test_same_logits_as_the_full_forward(kind, kv_heads, padded):
    model = tiny(kind, kv_heads)
    assert FastStep.supported(model)
    compare_steps(model, *batch(padded))


@pytest.mark.parametrize("padded", [False, True])
def test_same_logits_with_a_different_adapter_per_row(padded):
    model = with_adapters(tiny("qwen2"))
    assert FastStep.supported(model)
    with batched_lora(model, ["one", None, "two"]) as ok:
        assert ok
        compare_steps(model, *batch(padded))


class Tokens:
    def __init__(self):
        self.steps = []

    def put(self, value):
        self.steps.append(value)

    def end(self):
        pass


def decode(model, fast_step: bool, settings) -> torch.Tensor:
    ids, mask = batch(padded=True)
    tokens = Tokens()
    greedy_decode(model, ids, mask, settings, {2}, 0, tokens, threading.Event(), fast_step=fast_step)
    return torch.cat([step.reshape(ids.shape[0], -1) for step in tokens.steps[1:]], dim=1)


def test_the_decoding_loop_answers_the_same_with_and_without_it():
    model = with_adapters(tiny("llama"))
    assert FastStep.supported(model)
    for settings in (GenerationSettings(max_new_tokens=20),
                     GenerationSettings(max_new_tokens=16, repetition_penalty=1.3, min_new_tokens=10)):
        with batched_lora(model, [None, "two", "one"]):
            fast, full = decode(model, True, settings), decode(model, False, settings)
        assert fast.shape == (3, settings.max_new_tokens) and torch.equal(fast, full)


def test_models_it_does_not_cover_keep_the_full_forward():
    from transformers import GPT2Config, GPT2LMHeadModel

    assert not FastStep.supported(tiny("qwen2", use_sliding_window=True, sliding_window=8, max_window_layers=1))
    eager = tiny("llama")
    eager.config._attn_implementation = "eager"
    assert not FastStep.supported(eager)
    training = tiny("qwen2").train()
    assert not FastStep.supported(training)
    assert not FastStep.supported(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50)))


def test_the_few_rows_layout_changes_only_the_last_bits(monkeypatch):
    monkeypatch.setattr(row_matmul, "enabled", True)
    monkeypatch.setattr(row_matmul, "transposed_is_faster", lambda weight, rows: True)
    model = with_adapters(tiny("qwen2"))
    with batched_lora(model, ["one", None, "two"]):
        compare_steps(model, *batch(padded=True), exact=False)
        settings = GenerationSettings(max_new_tokens=20)
        fast, full = decode(model, True, settings), decode(model, False, settings)
    assert torch.equal(fast, full)


def test_row_matmul_is_f_linear_in_another_layout(monkeypatch):
    import torch.nn.functional as F

    monkeypatch.setattr(row_matmul, "enabled", True)
    monkeypatch.setattr(row_matmul, "transposed_is_faster", lambda weight, rows: True)
    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(48, 32, generator=generator), torch.randn(48, generator=generator)
    with torch.inference_mode():
        for shape in [(4, 1, 32), (3, 32), (2, 5, 32)]:
            x = torch.randn(*shape, generator=generator)
            for b in (None, bias):
                got = row_matmul.linear(x, weight, b)
                assert got.shape == F.linear(x, weight, b).shape and got.is_contiguous()
                assert torch.allclose(got, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)
        for shape in [(1, 1, 32), (17, 32), (4, 8, 32)]:  # one row, or more than FEW_ROWS: F.linear itself
            x = torch.randn(*shape, generator=generator)
            assert torch.equal(row_matmul.linear(x, weight, bias), F.linear(x, weight, bias))
    x = torch.randn(4, 32, generator=generator)
    assert torch.equal(row_matmul.linear(x, weight, bias), F.linear(x, weight, bias))  # with gradients on: F.linear


def test_the_layout_is_timed_once_per_shape(monkeypatch):
    monkeypatch.setattr(row_matmul, "_faster", {})
    weight = torch.randn(64, 32)
    first = row_matmul.transposed_is_faster(weight, 4)
    assert list(row_matmul._faster) == [(64, 32, 4, torch.float32)]
    monkeypatch.setattr(row_matmul, "_best_ms", lambda run, repeats=2: pytest.fail("timed twice"))
    assert row_matmul.transposed_is_faster(weight, 4) == first
