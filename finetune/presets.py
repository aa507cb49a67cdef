"""Ready-made training settings per model and method, the way XTuner's `list-cfg` / `copy-cfg` serve its users:

    python -m finetune presets                      # every preset: model, method, the memory it needs
    python -m finetune presets copy NAME run.yaml   # write one as a TrainConfig YAML to edit, then
    python -m finetune train --config run.yaml

Each preset is a plain TrainConfig (the same checks as any run: tests/test_presets.py validates every one). Only
`demo-lora` is run end to end by the test suite (on the CPU); the others are the settings commonly used for these
model sizes (LoRA rank 16, all linear layers, sdpa + packing; QLoRA with gradient checkpointing above ~3B) and are
checked for validity and memory, not for results.

The memory figure is an estimate for one GPU: the base weights (bf16 or NF4, models/catalog.py) + LoRA weights with
their fp32 Adam states + activations at the preset's batch and length + the fp32 logits for the loss + a margin.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from finetune.config import TrainConfig
from models.catalog import ModelShape, load_catalog, weight_bytes

SAMPLE_DATA = "data/train_sample.jsonl"  # relative to the repository root; edit `data` in the copied file
MARGIN_BYTES = 1 << 30  # CUDA context, allocator fragmentation, tokenizer and data


@dataclass(frozen=True)
class Preset:
    name: str
    method: str  # "LoRA" or "QLoRA"
    note: str  # what it is for, one line
    config: TrainConfig


def _preset(name: str, model: str, note: str, **settings) -> Preset:
    base = dict(model=model, data=SAMPLE_DATA, lora_rank=16, lora_alpha=32, lora_targets="all-linear",
                learning_rate=2e-4, num_epochs=3.0, cutoff_len=1024, batch_size=4, grad_accum=4, packing=True,
                precision="auto", eval_steps=100, save_steps=100, sample_every=100)
    config = TrainConfig(**{**base, **settings})
    return Preset(name, "QLoRA" if config.load_in_4bit else "LoRA", note, config)


PRESETS: list[Preset] = [
    _preset("demo-lora", "demo", "the built-in demo model: runs anywhere in a minute, for trying the workflow",
            lora_rank=8, lora_alpha=16, max_steps=30, batch_size=4, grad_accum=1, cutoff_len=512, eval_steps=10,
            save_steps=10, sample_every=0),
    _preset("qwen2.5-0.5b-lora", "Qwen/Qwen2.5-0.5B-Instruct", "small first run on a modest GPU or a patient CPU"),
    _preset("qwen2.5-1.5b-lora", "Qwen/Qwen2.5-1.5B-Instruct", "a good size/quality balance on a 24 GB GPU"),
    _preset("qwen2.5-1.5b-qlora", "Qwen/Qwen2.5-1.5B-Instruct", "the same on an 8 GB GPU",
            load_in_4bit=True, gradient_checkpointing=True),
    _preset("qwen2.5-7b-qlora", "Qwen/Qwen2.5-7B-Instruct", "a 7B model on a 16-24 GB GPU",
            load_in_4bit=True, gradient_checkpointing=True, batch_size=2, grad_accum=8, learning_rate=1e-4),
    _preset("qwen3-1.7b-lora", "Qwen/Qwen3-1.7B", "Qwen3's small dense model",
            gradient_checkpointing=True),
    _preset("internlm3-8b-qlora", "internlm/internlm3-8b-instruct",
            "InternLM3 (its own model code: trusted on purpose)",
            trust_remote_code=True, load_in_4bit=True, gradient_checkpointing=True, batch_size=2, grad_accum=8,
            learning_rate=1e-4),
    _preset("glm4-9b-qlora", "THUDM/glm-4-9b-chat-hf", "GLM-4-9B-Chat in transformers' own GLM code",
            load_in_4bit=True, gradient_checkpointing=True, batch_size=2, grad_accum=8, learning_rate=1e-4),
    _preset("ernie4.5-0.3b-lora", "baidu/ERNIE-4.5-0.3B-PT", "ERNIE 4.5's smallest model", lora_rank=8, lora_alpha=16),
    _preset("llama3.2-3b-lora", "meta-llama/Llama-3.2-3B-Instruct", "Llama 3.2 3B (gated: accept the licence first)",
            gradient_checkpointing=True, batch_size=2, grad_accum=8),
]


def get(name: str) -> Preset:
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise KeyError(f"no preset named {name!r}; known: {', '.join(p.name for p in PRESETS)}")


def for_model(model: str) -> list[Preset]:
    """The presets of one model (the picker offers these when the model is chosen)."""
    return [p for p in PRESETS if p.config.model == model]


def model_shape(model: str) -> ModelShape | None:
    """The catalog's shape of a model, or the demo recipe's (without building the demo model)."""
    if model == "demo":
        from finetune.demo_model import DemoRecipe

        r = DemoRecipe()
        return ModelShape(hidden=r.hidden_size, layers=r.num_layers, heads=r.num_heads, kv_heads=r.num_kv_heads,
                          intermediate=r.intermediate_size, vocab=r.vocab_size, tied=True, qkv_bias=True)
    return next((m.shape for m in load_catalog() if m.id == model), None)


def lora_parameters(shape: ModelShape, rank: int) -> int:
    """LoRA on every linear layer of the decoder: r x (in + out) per matrix."""
    h, d, i = shape.hidden, shape.dim, shape.intermediate
    q, kv = shape.heads * d, shape.kv_heads * d
    per_layer = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h)
    return shape.layers * rank * per_layer


def training_memory(config: TrainConfig, shape: ModelShape) -> int:
    """Bytes one GPU needs for this run (see the module's docstring for what is counted)."""
    weights = weight_bytes(shape, "4bit" if config.load_in_4bit else "bf16")
    lora = lora_parameters(shape, config.lora_rank) * (2 + 4 + 4 + 4)  # bf16 weight, fp32 master + Adam m and v
    tokens = config.batch_size * config.cutoff_len
    # Per layer ~34 bytes x hidden per token in 16-bit with a fused (sdpa) attention (Korthikanti et al. 2022);
    # with checkpointing only each layer's input stays, plus one layer being recomputed.
    kept_layers = 1 if config.gradient_checkpointing else shape.layers
    activations = tokens * shape.hidden * (34 * kept_layers + (2 * shape.layers if kept_layers == 1 else 0))
    logits = tokens * shape.vocab * 4 * 2  # fp32 logits and their gradient
    return weights + lora + activations + logits + MARGIN_BYTES


def memory_needed(preset: Preset) -> int | None:
    shape = model_shape(preset.config.model)
    return None if shape is None else training_memory(preset.config, shape)


def copy_to(name: str, path: str | Path) -> Path:
    """Writes the preset as a TrainConfig YAML (refuses to overwrite a file)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path}: already exists; choose another name or remove it")
    get(name).config.save(path)
    return path


def validated(preset: Preset, check_files: bool = True) -> TrainConfig:
    """The preset through TrainConfig.validate, as `finetune train` would check it."""
    return dataclasses.replace(preset.config).validate(check_files=check_files)
