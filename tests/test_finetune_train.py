"""Real CPU training on a tiny model (no mocks of Trainer or peft): loss goes down, the adapter reloads and changes
answers; jobs in their own process group can be stopped and resumed; the CLI runs end to end."""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from finetune.config import TrainConfig
from jobs.files import create_job, read_jsonl
from jobs.process import read_job, start_job, stop_job, wait_job
from jobs.worker import run
from tests.finetune_fixtures import QA, write_alpaca

ROOT = Path(__file__).resolve().parent.parent


def quick_config(model: Path, data: Path, **changes) -> TrainConfig:
    values = dict(model=str(model), data=str(data), val_split=0, max_steps=40, learning_rate=1e-2, batch_size=8,
                  lora_rank=16, lora_alpha=32, lora_dropout=0.0, warmup_ratio=0.0, logging_steps=4, save_steps=0,
                  sample_every=20, sample_prompts=[QA[0][0]], sample_max_new_tokens=16, cutoff_len=128)
    return TrainConfig(**{**values, **changes})


def greedy(model, tokenizer, prompt: str) -> str:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_training_lowers_loss_and_saves_a_reloadable_adapter(tmp_path, tiny_chat_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_alpaca(tmp_path / "qa.jsonl")
    files = create_job(quick_config(tiny_chat_model, data, adapter_name="memorise"), tmp_path / "runs")
    assert run(files.dir) == 0
    status = files.read_status()
    assert status["state"] == "completed", status
    assert status["step"] == status["total_steps"] == 40 and status["tokens_per_s"] > 0

    losses = [m["loss"] for m in read_jsonl(files.metrics) if "loss" in m]
    assert len(losses) == 10 and losses[-1] < losses[0] * 0.5
    samples = read_jsonl(files.samples)
    assert [s["step"] for s in samples] == [20, 40]

    adapter = tmp_path / "runs" / "adapters" / "memorise"
    assert Path(status["adapter_dir"]) == adapter
    for name in ("adapter_config.json", "adapter_model.safetensors", "train_config.yaml", "metrics.jsonl"):
        assert (adapter / name).is_file(), name
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_chat_model)
    assert not [p for p in adapter.parent.iterdir() if p.name.startswith(".")]  # no temp dir left behind

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_model).eval()
    before = greedy(base, tokenizer, QA[0][0])
    tuned = PeftModel.from_pretrained(base, adapter).eval()
    after = greedy(tuned, tokenizer, QA[0][0])
    assert after != before
    assert after[:4] == QA[0][1][:4]  # the memorised answer starts to come back


def test_stop_keeps_a_checkpoint_and_resume_finishes(tmp_path, tiny_chat_model):
    data = write_alpaca(tmp_path / "qa.jsonl", QA[:2])
    cfg = quick_config(tiny_chat_model, data, max_steps=400, batch_size=2, save_steps=3, sample_every=0,
                       logging_steps=1, val_split=1, eval_steps=4, learning_rate=1e-3)
    files = create_job(cfg, tmp_path / "runs")
    start_job(files)
    deadline = time.time() + 120
    while files.read_status().get("step", 0) < 4:
        assert time.time() < deadline, files.log_tail()
        assert read_job(files)["state"] not in ("failed", "completed"), files.log_tail()
        time.sleep(0.3)
    stop_job(files, wait=True)
    status = read_job(files)
    assert status["state"] == "stopped", files.log_tail()
    checkpoints = sorted(files.checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    stopped_at = int(checkpoints[-1].name.split("-")[1])
    assert stopped_at >= 4  # Stop saved the step it was on, not just the last periodic checkpoint
    assert not (tmp_path / "runs" / "adapters").exists()

    # Resume with a nearer end so the test stays short: the trainer continues from the checkpoint's step.
    config = yaml.safe_load(files.config.read_text())
    config["max_steps"] = stopped_at + 3
    files.config.write_text(yaml.safe_dump(config, allow_unicode=True))
    start_job(files, resume=True)
    status = wait_job(files, timeout_s=180)
    assert status["state"] == "completed", files.log_tail()
    assert status["resumed_from"].endswith(f"checkpoint-{stopped_at}")
    steps = [m["step"] for m in read_jsonl(files.metrics) if "loss" in m]
    assert steps == sorted(set(steps)) and steps[-1] == stopped_at + 3  # one curve, no repeated steps
    assert any("eval_loss" in m for m in read_jsonl(files.metrics))
    assert Path(status["adapter_dir"], "adapter_model.safetensors").is_file()


def test_crashed_job_is_reported_failed_with_its_error(tmp_path, tiny_chat_model):
    data = write_alpaca(tmp_path / "qa.jsonl")
    files = create_job(quick_config(tiny_chat_model, data, lora_targets="no_such_proj"), tmp_path / "runs")
    start_job(files)
    status = wait_job(files, timeout_s=120)
    assert status["state"] == "failed" and "lora_targets" in status["error"]


def test_cli_preview_and_bad_config(tmp_path, tiny_chat_model):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "头痛？", "output": "休息。"}\n{"instruction": 1, "output": "x"}\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "finetune", "preview", "--data", str(data), "--model",
                           str(tiny_chat_model)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "⟦休息。<|im_end|>\n⟧" in done.stdout and "1 kept, 1 rejected" in done.stdout
    assert f"{data}:2: field 'instruction': expected a string, got int" in done.stderr
    done = subprocess.run([sys.executable, "-m", "finetune", "train", "--data", str(data), "--lora-rank", "0",
                           "--data-dir", str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "lora_rank: must be a positive integer" in done.stderr


def test_resume_skips_a_checkpoint_cut_off_while_saving(tmp_path, capsys):
    from finetune.train import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "none") is None
    for step, complete in ((2, True), (4, True), (10, False)):  # 10 > 4: sorted by number, not by name
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert not (tmp_path / "checkpoint-10").exists() and "removing checkpoint-10: incomplete" in capsys.readouterr().out
