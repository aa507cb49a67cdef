"""Tiny models and data for the finetune tests: built in seconds (no pretraining), unlike the demo model."""

from __future__ import annotations

import json
from pathlib import Path

# A small memorisable set: short medical Q/A pairs, each answer distinctive so a LoRA run can learn them.
QA = [
    ("头痛发热应该怎么办？", "多喝水，注意休息，体温超过38.5度可服用退烧药。"),
    ("高血压患者饮食要注意什么？", "低盐低脂饮食，每天食盐不超过5克。"),
    ("糖尿病的典型症状是什么？", "多饮、多食、多尿和体重下降。"),
    ("感冒咳嗽可以吃什么？", "可以喝温水和蜂蜜水，必要时服用止咳药。"),
    ("失眠怎么调理？", "规律作息，睡前避免咖啡和手机。"),
    ("胃痛反酸怎么办？", "少食多餐，避免辛辣，可服用抑酸药。"),
]


def write_alpaca(path: Path, qa=QA) -> Path:
    path.write_text("".join(json.dumps({"instruction": q, "input": "", "output": a}, ensure_ascii=False) + "\n"
                            for q, a in qa), encoding="utf-8")
    return path


def build_tiny_model(out_dir: Path) -> Path:
    """A random-weight Qwen2-shaped chat model with a byte-level BPE tokenizer trained on QA (ChatML template)."""
    import torch

    from finetune.demo_model import DemoRecipe, init_model, train_tokenizer

    if (out_dir / "config.json").exists():
        return out_dir
    recipe = DemoRecipe(vocab_size=400, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                        num_kv_heads=2, max_positions=512)
    texts = [s for pair in QA for s in pair] + ["你是一名专业、严谨的医学助手。", "user", "assistant", "system"]
    tokenizer = train_tokenizer(texts * 3, recipe)
    model = init_model(tokenizer, recipe)
    # With the default init (std 0.02) the tied embeddings are so small that logits stay within about +-1 whatever
    # the hidden state: LoRA could not get the loss far below log(vocab). Larger embeddings make it learnable.
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(5)
    model.generation_config.do_sample = False
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
