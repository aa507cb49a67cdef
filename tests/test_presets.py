"""finetune/presets.py and `python -m finetune presets [copy NAME FILE]`: every preset passes the same config checks
as any run, has a model the catalog knows (sizes from config numbers), and copies to a YAML that loads back."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from finetune import presets
from finetune.__main__ import main
from finetune.config import ConfigError, TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def _cuda_qlora_ok() -> bool:
    from finetune.config import check_qlora

    try:
        check_qlora()
        return True
    except ConfigError:
        return False


@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: p.name)
def test_every_preset_passes_the_config_checks(preset, monkeypatch):
    monkeypatch.chdir(ROOT)  # the presets name the bundled sample data relative to the repository
    assert Path(preset.config.data).is_file()
    if preset.config.load_in_4bit and not _cuda_qlora_ok():
        # Here (no CUDA or no bitsandbytes) the 4-bit check refuses, naming the field; everything else must pass.
        with pytest.raises(ConfigError) as refused:
            presets.validated(preset)
        assert refused.value.field == "load_in_4bit"
        dataclasses.replace(preset.config, load_in_4bit=False).validate()
    else:
        presets.validated(preset)
    assert preset.method == ("QLoRA" if preset.config.load_in_4bit else "LoRA")
    assert presets.model_shape(preset.config.model) is not None  # demo or a catalog model: memory is computed
    assert presets.memory_needed(preset) > 0


def test_memory_follows_the_method_and_the_model():
    lora, qlora = presets.get("qwen2.5-1.5b-lora"), presets.get("qwen2.5-1.5b-qlora")
    assert presets.memory_needed(qlora) < presets.memory_needed(lora)
    assert presets.memory_needed(presets.get("demo-lora")) < presets.memory_needed(presets.get("qwen2.5-0.5b-lora"))
    # Halving the batch lowers the estimate; checkpointing too.
    config = presets.get("qwen2.5-0.5b-lora").config
    shape = presets.model_shape(config.model)
    full = presets.training_memory(config, shape)
    assert presets.training_memory(dataclasses.replace(config, batch_size=2), shape) < full
    assert presets.training_memory(dataclasses.replace(config, gradient_checkpointing=True), shape) < full
    assert [p.name for p in presets.for_model("Qwen/Qwen2.5-1.5B-Instruct")] == ["qwen2.5-1.5b-lora",
                                                                                 "qwen2.5-1.5b-qlora"]
    with pytest.raises(KeyError, match="no preset named 'nope'"):
        presets.get("nope")


def test_lora_parameters_match_peft(tiny_chat_model):
    """The LoRA count behind the memory estimate equals what peft creates on every linear layer."""
    import json

    import transformers
    from peft import LoraConfig, get_peft_model

    from models.catalog import ModelShape

    config = json.loads((tiny_chat_model / "config.json").read_text())
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_chat_model)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert presets.lora_parameters(ModelShape.from_config(config), 4) == trainable


def test_cli_lists_and_copies(tmp_path, capsys):
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    assert all(p.name in listing for p in presets.PRESETS) and "QLoRA" in listing and "GB" in listing
    target = tmp_path / "run.yaml"
    assert main(["presets", "copy", "qwen2.5-1.5b-qlora", str(target)]) == 0
    assert TrainConfig.load(target) == presets.get("qwen2.5-1.5b-qlora").config
    assert main(["presets", "copy", "demo-lora", str(target)]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
    assert main(["presets", "copy", "nope", str(tmp_path / "x.yaml")]) == 2
    assert main(["presets", "copy", "demo-lora"]) == 2


def test_cli_as_a_process():
    out = subprocess.run([sys.executable, "-m", "finetune", "presets"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "demo-lora" in out.stdout
