"""The model-family matrix: every architecture users bring (tests/family_fixtures.py), through the whole path on a
tiny random model of its shape: preview (the loss mask), packing (packed loss = unpacked loss), a few training steps
by the real job, the adapter reloaded by plain peft, chat with the base and two adapters side by side (each pane
equal to that model alone, through peft), evaluation by likelihood and by generation, and merge.

One case per (step, family). Each family's model, trained adapter and registry are built once per module, on first
use, so any single case can also run alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from family_fixtures import FAMILIES, SHAPE, build_family_model
from finetune.formats import Conversation, Message
from finetune.tokenization import IGNORE_INDEX, PackedCollator, as_features, encode_all, pack
from tests.finetune_fixtures import QA

NAMES = list(FAMILIES)
SYSTEM = "你是一名专业、严谨的医学助手。"
CHAT_A = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "高血压患者饮食要注意什么？"}]
CHAT_B = [{"role": "user", "content": "感冒咳嗽可以吃什么？"}]
ROOT = Path(__file__).resolve().parent.parent


class Workspace:
    """Per family, built on first use: the model dir, the trained adapter, a random adapter, the registry."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[tuple[str, str], object] = {}

    def _once(self, key: tuple[str, str], build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def model_dir(self, name: str) -> Path:
        return self._once((name, "model"), lambda: build_family_model(name, self.root / name / "model"))

    def tokenizer(self, name: str):
        from transformers import AutoTokenizer

        return self._once((name, "tokenizer"), lambda: AutoTokenizer.from_pretrained(self.model_dir(name)))

    def base(self, name: str):
        """A fresh copy of the plain model (peft wraps models in place, so every use gets its own)."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.model_dir(name), dtype=torch.float32).eval()

    def data_file(self) -> Path:
        def write() -> Path:
            path = self.root / "train.jsonl"
            rows = [{"messages": ([{"role": "system", "content": SYSTEM}] if i % 2 else [])
                     + [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
                    for i, (q, a) in enumerate(QA)]
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            return path
        return self._once(("*", "data"), write)

    def adapters(self, name: str) -> Path:
        return self.root / name / "data" / "adapters"

    def trained(self, name: str) -> Path:
        return self._once((name, "trained"), lambda: _train(self, name))

    def random_adapter(self, name: str) -> Path:
        from chat_fixtures import build_adapter

        targets = _targets(self.base(name))
        return self._once((name, "random"), lambda: build_adapter(self.model_dir(name), self.adapters(name) / "random",
                                                                  seed=1, targets=targets))

    def registry(self, name: str):
        from chat.registry import ModelRegistry

        self.trained(name), self.random_adapter(name)
        return self._once((name, "registry"),
                          lambda: ModelRegistry(str(self.model_dir(name)), self.root / name / "data"))


def _targets(model) -> tuple[str, ...]:
    """The attention query/value and MLP down projections, by whatever names the family gives them."""
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    return tuple(n for n in ("q_proj", "v_proj", "qkv_proj", "down_proj") if n in names)


def _train(ws: Workspace, name: str, precision: str = "fp32", out_name: str = "trained") -> Path:
    from finetune.config import TrainConfig
    from jobs.files import create_job
    from jobs.worker import run

    out = ws.root / name / out_name if precision != "fp32" else ws.adapters(name) / out_name
    cfg = TrainConfig(model=str(ws.model_dir(name)), data=str(ws.data_file()), val_split=0, max_steps=3,
                      batch_size=2, learning_rate=1e-2, lora_rank=4, lora_alpha=8, lora_dropout=0.0,
                      warmup_ratio=0.0, logging_steps=1, save_steps=0, sample_every=3,
                      sample_prompts=[QA[0][0]], sample_max_new_tokens=4, cutoff_len=128, pack_len=256,
                      packing=True, output_dir=str(out), precision=precision)
    files = create_job(cfg, ws.root / name / "runs")
    assert run(files.dir) == 0, files.read_status()
    status = files.read_status()
    assert status["state"] == "completed", status
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory, medtune_home) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("families"))


def _conversations() -> list[Conversation]:
    convs = []
    for i, (q, a) in enumerate(QA):
        msgs = ([Message("system", SYSTEM)] if i % 2 else []) + [Message("user", q), Message("assistant", a)]
        convs.append(Conversation(tuple(msgs), line=i + 1))
    return convs


def _stop_ids(tokenizer, model_dir: Path) -> set[int]:
    from transformers import GenerationConfig

    eos = GenerationConfig.from_pretrained(model_dir).eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}


def _spans(labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for label in labels + [IGNORE_INDEX]:
        if label != IGNORE_INDEX:
            current.append(label)
        elif current:
            spans, current = spans + [current], []
    return spans


@pytest.mark.parametrize("name", NAMES)
def test_family_preview_masks_exactly_the_answers(ws, name):
    """The trained tokens are each answer and then a token that ends the turn, nothing of the prompt; no double BOS."""
    from finetune.preview import preview_data

    tokenizer = ws.tokenizer(name)
    preview = preview_data(ws.data_file(), tokenizer=tokenizer, cutoff_len=512)
    assert preview.trained_tokens > 0 and not preview.dropped
    rows, _ = encode_all(tokenizer, _conversations(), cutoff_len=512)
    stops = _stop_ids(tokenizer, ws.model_dir(name))
    for row, conv in zip(rows, _conversations()):
        answer = conv.messages[-1].content
        (span,) = _spans(row.labels)
        assert span[-1] in stops or any(t in stops for t in span), f"{name}: the model never learns to stop"
        text = tokenizer.decode(span, skip_special_tokens=True).strip()
        assert text.replace("<think>", "").replace("</think>", "").strip() == answer
        prompt = tokenizer.decode([t for t, label in zip(row.input_ids, row.labels) if label == IGNORE_INDEX])
        assert conv.messages[-2].content in prompt and answer not in prompt
        if tokenizer.bos_token_id is not None:
            assert row.input_ids.count(tokenizer.bos_token_id) == 1, f"{name}: BOS twice"
    # Two turns: each answer trained with its stop, the tokens being the template's rendering of the whole
    # conversation. (Qwen3's template drops the thinking block of earlier answers once another turn follows.)
    two = Conversation((Message("user", QA[0][0]), Message("assistant", QA[0][1]), Message("user", "谢谢"),
                        Message("assistant", "不客气。")), line=7)
    (row,), _ = encode_all(tokenizer, [two], cutoff_len=512)
    spans = _spans(row.labels)
    assert len(spans) == 2 and all(any(t in stops for t in span) for span in spans)
    assert tokenizer.decode(spans[0], skip_special_tokens=True).strip() == QA[0][1]
    assert tokenizer.decode(spans[1], skip_special_tokens=True).strip() == "不客气。"
    assert tokenizer.decode(row.input_ids) == tokenizer.apply_chat_template(two.as_dicts(), tokenize=False) \
        + ("" if FAMILIES[name].name != "glm4" else tokenizer.eos_token)  # GLM-4: the last stop is added


@pytest.mark.parametrize("name", NAMES)
def test_family_packed_loss_equals_unpacked(ws, name):
    tokenizer, model = ws.tokenizer(name), ws.base(name)
    rows, _ = encode_all(tokenizer, _conversations(), cutoff_len=512)
    packed = pack(rows, 2 * max(len(r.input_ids) for r in rows))
    assert len(packed) < len(rows)
    pad = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id  # as training does
    batch = PackedCollator(pad)(as_features(packed))
    with torch.no_grad():
        packed_loss = model(**batch).loss.item()
        total, count = 0.0, 0
        for r in rows:
            labels = torch.tensor([r.labels])
            loss = model(input_ids=torch.tensor([r.input_ids]), labels=labels).loss.item()
            n = int((labels[:, 1:] != IGNORE_INDEX).sum())
            total, count = total + loss * n, count + n
    assert packed_loss == pytest.approx(total / count, abs=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_family_trains_packed_and_plain_peft_reloads(ws, name):
    from peft import PeftModel

    adapter = ws.trained(name)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(ws.model_dir(name))
    report = json.loads((adapter / "data_report.json").read_text())
    assert report["packing"] and report["train_rows"] < len(QA)
    tuned = PeftModel.from_pretrained(ws.base(name), adapter).eval()
    ids = torch.tensor([ws.tokenizer(name)(QA[0][0], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert not torch.allclose(tuned(input_ids=ids).logits, ws.base(name)(input_ids=ids).logits)


def _plain_answer(model, tokenizer, messages, max_new_tokens: int) -> str:
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize("name", NAMES)
def test_family_chat_panes_equal_each_model_alone(ws, name):
    from peft import PeftModel

    from chat.settings import GenerationSettings

    registry = ws.registry(name)
    panes = [(None, CHAT_A), ("trained", CHAT_B), ("random", CHAT_A)]
    answers = registry.generate_panes(panes, GenerationSettings(max_new_tokens=12))
    tokenizer = ws.tokenizer(name)
    expected = [_plain_answer(ws.base(name), tokenizer, CHAT_A, 12)]
    for adapter, messages in panes[1:]:
        alone = PeftModel.from_pretrained(ws.base(name), ws.adapters(name) / adapter).eval()
        expected.append(_plain_answer(alone, tokenizer, messages, 12))
    assert answers == expected
    assert expected[2] != expected[0]  # the random adapter changes the answer: the panes are not all the base
    path = registry.decoding_path()
    assert path.startswith("fast step") == FAMILIES[name].fast_step, path
    assert registry.models()[0].decoding == path  # what the model list shows beside the base


def test_family_fast_step_refuses_what_it_does_not_reproduce():
    """Each refusal names its reason, which the model list shows; the chat test above checks the answers."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from models.local.fast_step import FastStep

    def reason(kind, **config):
        shape = {**SHAPE, "vocab_size": 64, "num_hidden_layers": 1}
        return FastStep.unsupported_reason(AutoModelForCausalLM.from_config(AutoConfig.for_model(kind, **shape,
                                                                                                **config)).eval())

    assert reason("mistral", sliding_window=None) is None
    assert reason("mistral", sliding_window=8) == "sliding-window attention (sliding_window=8)"
    assert "this model is qwen3" in reason("qwen3")
    assert reason("llama", attn_implementation="eager").startswith("attention implementation 'eager'")


@pytest.mark.parametrize("name", NAMES)
def test_family_evaluates_by_likelihood_and_generation(ws, name, tmp_path):
    from peft import PeftModel

    from evaluation.run import EvalConfig, evaluate

    registry = ws.registry(name)
    data = (str(ROOT / "data" / "mc_sample.jsonl"),)
    cells = evaluate(registry, EvalConfig(data=data, out_dir=str(tmp_path / "ll"), models=(None, "random"),
                                          method="likelihood", limit=3, batch_size=3))
    assert [len(c.rows) for c in cells] == [3, 3]
    assert all(sum(r["letter_probs"].values()) == pytest.approx(1.0, abs=1e-4) for c in cells for r in c.rows)
    # The registry's likelihood is what the adapter alone through peft gives for the same prompt.
    prompt = registry.render(CHAT_A)
    ours = registry.next_token_logits([prompt, registry.render(CHAT_B)], "random")[0]
    alone = PeftModel.from_pretrained(ws.base(name), ws.adapters(name) / "random").eval()
    with torch.no_grad():
        ids = torch.tensor([ws.tokenizer(name)(prompt, add_special_tokens=False)["input_ids"]])
        theirs = alone(input_ids=ids).logits[0, -1]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    generated = evaluate(registry, EvalConfig(data=data + (str(ROOT / "data" / "qa_sample.jsonl"),),
                                              out_dir=str(tmp_path / "gen"), models=("trained",), method="generate",
                                              limit=2, batch_size=2, mc_max_new_tokens=6, qa_max_new_tokens=6))
    assert [c.task for c in generated] == ["mc", "qa"] and all(len(c.rows) == 2 for c in generated)


@pytest.mark.parametrize("name", NAMES)
def test_family_merge_answers_like_peft(ws, name, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from finetune.merge import merge_adapter

    adapter = ws.random_adapter(name)
    out = merge_adapter(adapter, tmp_path / "merged", model=str(ws.model_dir(name)), dtype="fp32")
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    alone = PeftModel.from_pretrained(ws.base(name), adapter).eval()
    tokenizer = ws.tokenizer(name)
    assert _plain_answer(merged, tokenizer, CHAT_A, 12) == _plain_answer(alone, tokenizer, CHAT_A, 12)


# ---------------------------------------------------------------------------------------------------------------
# Low precision on the CPU: what a GPU would run in (bf16, or fp16 on older cards), for the Llama-family shapes the
# fast path serves. Dtype mismatches between the base, the adapters and our own kernels show up here first.

LOW = [(n, d) for n in ("qwen2", "llama") for d in ("bf16", "fp16")]
TORCH_DTYPE = {"bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.mark.parametrize("name,precision", LOW)
def test_family_low_precision_trains(ws, name, precision):
    from peft import PeftModel

    out = _train(ws, name, precision=precision, out_name=f"trained-{precision}")
    losses = [m["loss"] for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in m]
    fp32 = [m["loss"] for m in map(json.loads, (ws.trained(name) / "metrics.jsonl").read_text().splitlines())
            if "loss" in m]
    assert len(losses) == 3 and losses[0] == pytest.approx(fp32[0], abs=0.05)  # same data, same first step
    PeftModel.from_pretrained(ws.base(name), out)  # plain peft reloads it


@pytest.mark.parametrize("name,precision", LOW)
def test_family_low_precision_chat_and_likelihood_equal_peft(ws, name, precision):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from chat.registry import ModelRegistry
    from chat.settings import GenerationSettings

    dtype = TORCH_DTYPE[precision]
    ws.registry(name)  # adapters in place
    registry = ModelRegistry(str(ws.model_dir(name)), ws.root / name / "data", dtype=str(dtype).split(".")[-1])
    panes = [(None, CHAT_A), ("trained", CHAT_B), ("random", CHAT_A)]
    answers = registry.generate_panes(panes, GenerationSettings(max_new_tokens=12))
    assert registry.model.dtype == dtype
    tokenizer = ws.tokenizer(name)

    def alone(adapter):
        base = AutoModelForCausalLM.from_pretrained(ws.model_dir(name), dtype=dtype).eval()
        return base if adapter is None else PeftModel.from_pretrained(base, ws.adapters(name) / adapter).eval()

    assert answers == [_plain_answer(alone(a), tokenizer, m, 12) for a, m in panes]
    # Likelihood: the same next-token scores as the adapter alone through peft, to the dtype's precision.
    prompts = [registry.render(CHAT_A), registry.render(CHAT_B)]
    ours = registry.next_token_logits(prompts, "random")
    model = alone("random")
    for prompt, row in zip(prompts, ours):
        ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            theirs = model(input_ids=ids).logits[0, -1].float()
        assert row.argmax() == theirs.argmax()
        torch.testing.assert_close(row, theirs, atol=0.1, rtol=0.02)


@pytest.mark.parametrize("name,precision", LOW)
def test_family_low_precision_lora_layer_equals_peft_bit_for_bit(ws, name, precision):
    """peft keeps adapter weights in fp32 beside a bf16/fp16 base: the batched-LoRA layer rounds as peft does."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from models.local.batched_lora import _lora_linears, batched_lora

    dtype = TORCH_DTYPE[precision]
    base = AutoModelForCausalLM.from_pretrained(ws.model_dir(name), dtype=dtype)
    model = PeftModel.from_pretrained(base, ws.random_adapter(name), adapter_name="r").eval()
    x = torch.randn(3, 5, base.config.hidden_size, generator=torch.Generator().manual_seed(0)).to(dtype)
    for layer in _lora_linears(model):
        if layer.base_layer.in_features != x.shape[-1]:
            continue
        assert layer.lora_A["r"].weight.dtype == torch.float32
        with torch.no_grad():
            expected = layer(x)
            with batched_lora(model, ["r", "r", "r"]) as batched:
                assert batched
                assert torch.equal(layer(x), expected)
