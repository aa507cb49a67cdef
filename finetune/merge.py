"""Merge a LoRA adapter into its base model and save a plain transformers model (e.g. for vLLM or llama.cpp)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from finetune.atomic import atomic_dir
from finetune.demo_model import resolve_model
from finetune.tokenization import ensure_chat_template
from models.preflight import preflight
from models.refs import adapter_hub


class MergeError(ValueError):
    pass


def adapter_base_model(adapter_dir: Path) -> str:
    config = Path(adapter_dir) / "adapter_config.json"
    if not config.is_file():
        raise MergeError(f"{adapter_dir}: not an adapter directory (no adapter_config.json)")
    try:
        base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except json.JSONDecodeError as exc:
        raise MergeError(f"{config}:{exc.lineno}: broken JSON ({exc.msg})") from None
    if not base:
        raise MergeError(f"{config}: field 'base_model_name_or_path' is empty; pass --model")
    return base


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, model: str | None = None,
                  dtype: str = "auto", trust_remote_code: bool = False) -> Path:
    """Base + adapter -> merged weights in out_dir, written atomically. out_dir must not exist yet."""
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if out_dir.exists():
        raise MergeError(f"{out_dir}: already exists; choose a new output directory")
    model_ref = model or adapter_base_model(adapter_dir)  # a wrong adapter is refused before torch is imported
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # The adapter's own base from the hub it was trained from (a --model given here follows the current setting).
    path = resolve_model(model_ref, hub=None if model else adapter_hub(adapter_dir))
    torch_dtype = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    # Before any weight is read (merge loads on the CPU): refused models get a message naming them and what to do.
    preflight(model_ref, path, trust_remote_code=trust_remote_code, dtype=torch_dtype, device="cpu")
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    ensure_chat_template(tokenizer)  # the template the adapter was trained with travels with the merged model
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for extra in ("train_config.yaml", "metrics.jsonl"):
            if (adapter_dir / extra).exists():
                shutil.copyfile(adapter_dir / extra, tmp / extra)
    return out_dir
