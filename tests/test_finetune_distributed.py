"""Data-parallel training on the CPU (gloo), started as the app starts it (config `processes: 2` -> torchrun): it
really is data parallel (the adapter equals a one-process run with the same global batch), only rank 0 writes, Stop
reaches every rank, and a rank that dies ends the job as failed."""

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finetune.config import TrainConfig
from jobs.files import create_job, read_jsonl
from jobs.process import read_job, start_job, stop_job, wait_job
from jobs.worker import run
from tests.finetune_fixtures import write_alpaca


def config(model: Path, data: Path, **changes) -> TrainConfig:
    values = dict(model=str(model), data=str(data), val_split=0, max_steps=3, learning_rate=1e-2, batch_size=3,
                  lora_rank=4, lora_alpha=8, lora_dropout=0.0, warmup_ratio=0.0, logging_steps=1, save_steps=0,
                  sample_every=0, packing=False, cutoff_len=128, processes=2)
    return TrainConfig(**{**values, **changes})


def wait_for_step(files, step: int, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while files.read_status().get("step", 0) < step:
        assert time.time() < deadline, files.log_tail()
        assert read_job(files)["state"] not in ("failed", "completed"), files.log_tail()
        time.sleep(0.3)


def test_two_processes_train_data_parallel_and_only_rank0_writes(tmp_path, tiny_chat_model):
    data = write_alpaca(tmp_path / "qa.jsonl")  # 6 rows: 2 ranks x 3 rows = every row in every step
    files = create_job(config(tiny_chat_model, data, adapter_name="dp"), tmp_path / "runs")
    start_job(files)
    status = wait_job(files, timeout_s=240)
    assert status["state"] == "completed", files.log_tail()
    log = files.log.read_text()
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in log
    assert log.count("[job] adapter saved") == 1
    assert [p.name for p in (tmp_path / "runs" / "adapters").iterdir()] == ["dp"]
    assert [m["step"] for m in read_jsonl(files.metrics)] == [1, 2, 3]  # one writer: no line twice

    single = create_job(config(tiny_chat_model, data, adapter_name="one", batch_size=6, processes=1),
                        tmp_path / "single")
    assert run(single.dir) == 0
    two = load_file(tmp_path / "runs" / "adapters" / "dp" / "adapter_model.safetensors")
    one = load_file(tmp_path / "single" / "adapters" / "one" / "adapter_model.safetensors")
    assert two.keys() == one.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=1e-4)
    base = [k for k in one if "lora_B" in k][0]
    assert one[base].abs().max() > 1e-3  # it trained: lora_B starts at zero


def test_stop_reaches_every_rank(tmp_path, tiny_chat_model):
    data = write_alpaca(tmp_path / "qa.jsonl")
    files = create_job(config(tiny_chat_model, data, max_steps=2000, learning_rate=1e-4), tmp_path / "runs")
    start_job(files)
    wait_for_step(files, 2)
    started = time.time()
    stop_job(files, wait=True, grace_s=90)
    status = read_job(files)
    assert status["state"] == "stopped", files.log_tail()
    assert time.time() - started < 60  # every rank left at the same step; none was left waiting to be killed
    assert list((files.dir / "checkpoints").glob("checkpoint-*/trainer_state.json"))


def _rank_pid(launcher_pid: int, rank: int) -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[-1].split()[1]) == launcher_pid and f"RANK={rank}".encode() in environ:
            return int(proc.name)
    return None


def test_a_rank_that_dies_fails_the_job(tmp_path, tiny_chat_model):
    data = write_alpaca(tmp_path / "qa.jsonl")
    files = create_job(config(tiny_chat_model, data, max_steps=2000, learning_rate=1e-4), tmp_path / "runs")
    launcher = start_job(files)
    wait_for_step(files, 2)
    victim = _rank_pid(launcher, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    status = wait_job(files, timeout_s=120)
    assert status["state"] == "failed", files.log_tail()
    assert not (tmp_path / "runs" / "adapters").exists() or not list((tmp_path / "runs" / "adapters").iterdir())


@pytest.mark.parametrize("processes", [0])
def test_processes_must_be_positive(tmp_path, tiny_chat_model, processes):
    from finetune.config import ConfigError

    with pytest.raises(ConfigError, match="processes"):
        config(tiny_chat_model, write_alpaca(tmp_path / "qa.jsonl"), processes=processes).validate()


def test_a_stop_that_reaches_one_rank_first_stops_them_all(tmp_path, tiny_chat_model):
    """Signals reach the ranks a step apart; a rank stopping alone would leave the other in an all-reduce for ever."""
    data = write_alpaca(tmp_path / "qa.jsonl")
    files = create_job(config(tiny_chat_model, data, max_steps=2000, learning_rate=1e-4), tmp_path / "runs")
    launcher = start_job(files)
    wait_for_step(files, 2)
    os.kill(_rank_pid(launcher, 1), signal.SIGTERM)
    status = wait_job(files, timeout_s=60)
    assert status["state"] == "stopped", files.log_tail()
    assert list((files.dir / "checkpoints").glob("checkpoint-*/trainer_state.json"))
