"""Tiny models and LoRA adapters for the chat tests, built from a config in seconds (no download, no sample data)."""

from __future__ import annotations

import json
from pathlib import Path

TEXTS = [
    "高血压患者应低盐饮食，规律服药，定期监测血压。",
    "糖尿病的典型症状包括多饮、多食、多尿和体重下降。",
    "感冒多由病毒引起，一般对症治疗即可，注意休息和补水。",
    "What are the symptoms of a common cold? Fever, cough and a sore throat.",
] * 8


def build_tiny_model(out_dir: Path, seed: int = 7, max_positions: int = 512) -> Path:
    """A random 2-layer Qwen2-shaped chat model with a byte-level BPE tokenizer and the ChatML template."""
    import torch

    from finetune.demo_model import DemoRecipe, init_model, train_tokenizer

    recipe = DemoRecipe(vocab_size=400, hidden_size=64, intermediate_size=128, num_heads=4, num_kv_heads=2,
                        max_positions=max_positions, seed=seed)
    tokenizer = train_tokenizer(TEXTS, recipe)
    model = init_model(tokenizer, recipe)
    with torch.no_grad():  # larger weights than the default init make greedy answers vary with the prompt
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    model.generation_config.do_sample = False
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_adapter(base_dir: Path, out_dir: Path, seed: int, base_ref: str | None = None,
                  targets: tuple[str, ...] = ("q_proj", "v_proj", "down_proj")) -> Path:
    """A LoRA adapter with random non-zero A and B, so that its answers differ from the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), lora_dropout=0.0))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    model.save_pretrained(out_dir)
    config_path = out_dir / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_ref or str(base_dir)
    config_path.write_text(json.dumps(config, indent=2))
    return out_dir
