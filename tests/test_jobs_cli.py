"""Jobs started from the command line are jobs like the app's (issue 15): one owner process per job (the lock in
its folder), liveness known however a job was started, `finetune jobs` never calls a live run failed, `finetune stop`
really stops a CLI run, a second trainer on a running job is refused, and the app lists (and follows) CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.files import JobFiles, create_job
from jobs.process import JobBusy, OwnerLock, holder_pid, is_alive, read_job
from jobs.status import JobStatus, from_stage
from jobs.store import CLI_OWNER, JobStore

ROOT = Path(__file__).resolve().parent.parent


def wait_for(check, timeout_s: float, what: str):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def cli(*args, data_dir: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finetune", *args, "--data-dir", str(data_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_the_owner_lock_tells_liveness_and_refuses_a_second_owner(tmp_path):
    from finetune.config import TrainConfig
    from tests.finetune_fixtures import write_alpaca

    files = create_job(TrainConfig(model="demo", data=str(write_alpaca(tmp_path / "qa.jsonl"))), tmp_path / "runs")
    assert not is_alive(files) and holder_pid(files) is None
    with OwnerLock(files) as lock:
        assert is_alive(files) and holder_pid(files) == os.getpid()
        files.update_status(state="training")
        assert read_job(files)["state"] == "training"  # owned: never declared gone
        with pytest.raises(JobBusy, match=rf"already running in process {os.getpid()}.*finetune stop {files.job_id}"):
            OwnerLock(files).acquire(wait_s=0.2)
        assert lock.fd is not None
    assert not is_alive(files)
    assert read_job(files)["state"] == "failed"  # no owner and no final stage: the process is gone
    assert from_stage("training", alive=True) == JobStatus.RUNNING
    assert from_stage("stopped", alive=False) == JobStatus.CANCELLED
    assert from_stage("training", alive=False) == JobStatus.INTERRUPTED


def test_a_cli_run_is_listed_refuses_a_second_trainer_and_stops_from_the_cli_and_the_app_follows_it(
        tmp_path, tiny_chat_model):
    from hosting.roles import Policy, User
    from jobs.store import NotAllowed
    from tests.finetune_fixtures import write_alpaca
    from ui.context import AppContext, with_services
    from ui.jobs_tab import do_list

    data, runs = write_alpaca(tmp_path / "qa.jsonl"), tmp_path / "runs"
    cmd = [sys.executable, "-m", "finetune", "train", "--model", str(tiny_chat_model), "--data", str(data),
           "--max-steps", "2000", "--batch-size", "2", "--set", "logging_steps", "1", "--save-steps", "0",
           "--sample-every", "0", "--val-split", "0", "--cutoff-len", "64", "--job-id", "cli-run",
           "--data-dir", str(runs)]
    trainer = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    files = JobFiles(runs / "jobs" / "cli-run")
    ctx = None
    try:
        wait_for(lambda: files.read_status().get("step", 0) >= 2 or trainer.poll() is not None, 180,
                 "the CLI run to train a few steps")
        assert trainer.poll() is None, trainer.stdout.read()
        assert is_alive(files) and holder_pid(files) == trainer.pid

        listed = cli("jobs", data_dir=runs)  # liveness from the lock: a CLI run is running, not "failed"
        line = next(x for x in listed.stdout.splitlines() if x.startswith("cli-run\t"))
        assert line.split("\t")[1] == "running" and CLI_OWNER in line, listed.stdout
        assert files.read_status()["state"] == "training"

        second = cli("train", "--resume", "cli-run", data_dir=runs)  # a second trainer on the same folder
        assert second.returncode == 7 and f"already running in process {trainer.pid}" in second.stderr  # busy

        # The app lists it and follows it: its row shows the CLI run's progress.
        ctx = with_services(AppContext(model="demo", data_dir=runs))
        frame, _ = do_list(None, ctx)
        assert "cli-run" in list(frame.iloc[:, 0])
        wait_for(lambda: (ctx.jobs.get("cli-run").done or 0) >= 2, 30, "the app to follow the CLI run")
        job = ctx.jobs.get("cli-run")
        assert (job.state, job.owner) == (JobStatus.RUNNING, CLI_OWNER)
        with pytest.raises(NotAllowed, match="'mo' may not cancel job cli-run"):  # a CLI run: the admin's to stop
            ctx.jobs.cancel("cli-run", User("mo", "member"), Policy())

        stopped = cli("stop", "cli-run", data_dir=runs)  # the Stop path from a terminal, on a CLI-started run
        assert stopped.returncode == 0 and "cancelled" in stopped.stdout, stopped.stdout + stopped.stderr
        assert trainer.wait(timeout=60) == 130  # stopped: interrupted, resumable (safeio.ExitStatus.INTERRUPTED)
        status = files.read_status()
        assert status["state"] == "stopped" and status["step"] < 2000
        assert list(files.checkpoints.glob("checkpoint-*"))  # Stop kept the step it was on for Resume
        wait_for(lambda: ctx.jobs.get("cli-run").state == JobStatus.CANCELLED, 15, "the row to end cancelled")
        assert JobStore(runs).row("cli-run").state == JobStatus.CANCELLED
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
        if ctx is not None:
            ctx.jobs.close()
