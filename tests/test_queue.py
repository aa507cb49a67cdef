"""The shared job queue (jobs/scheduler.py): order, positions and ETA, one job at a time, cancel and resume with owner
checks, a restart that finds jobs interrupted; then real tiny training jobs through it, and a real app restart."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from jobs.runners import default_runners
from jobs.scheduler import JobCancelled, JobQueue, JobStateError, NotAllowed, Runner, RunFailed, estimate_waits
from hosting.roles import Policy, User

ALICE, BOB, ADMIN = User("alice", "member"), User("bob", "member"), User("root", "admin")
POLICY = Policy()


def wait_for(check, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class FakeRunner:
    """Runs until its gate opens (or at once with params["open"]); records when each job ran."""

    def __init__(self):
        self.gates: dict[str, threading.Event] = defaultdict(threading.Event)
        self.ran: list[tuple[str, float, float, bool]] = []

    def run(self, job, control):
        start = time.time()
        control.progress(0, 10, job.params.get("eta"))
        while not job.params.get("open") and not self.gates[job.id].wait(0.01):
            if control.stop.is_set():
                raise JobCancelled("stopped by request")
        time.sleep(job.params.get("sleep", 0))
        if job.params.get("fail"):
            raise RunFailed("boom")
        control.progress(10, 10, 0)
        self.ran.append((job.id, start, time.time(), job.resume))


RUNNERS = default_runners()  # train and evaluate, as app.py wires them; the fake kind is added per test


@pytest.fixture
def fake(monkeypatch):
    runner = FakeRunner()
    monkeypatch.setitem(RUNNERS, "fake", Runner(runner.run))
    yield runner
    for gate in runner.gates.values():
        gate.set()  # no worker thread outlives its test


@pytest.fixture
def queue(tmp_path, fake):
    q = JobQueue(tmp_path, max_running=1, runners=RUNNERS, poll_s=0.05)
    yield q
    q.close()


def state(q, job_id):
    return q.get(job_id).state


def test_jobs_run_one_after_another_in_submission_order(queue, fake):
    ids = [queue.submit("fake", owner, {"open": True, "sleep": 0.15}).id for owner in ("alice", "bob", "alice")]
    wait_for(lambda: all(state(queue, i) == "completed" for i in ids), what="three jobs to complete")
    assert [r[0] for r in fake.ran] == ids
    rows = sorted((queue.get(i) for i in ids), key=lambda j: j.started_at)
    assert [j.id for j in rows] == ids
    for before, after in zip(rows, rows[1:]):
        assert before.finished_at <= after.started_at  # never two at once
    assert rows[0].owner == "alice" and rows[1].owner == "bob" and rows[0].done == rows[0].total == 10


def test_positions_and_waits(queue, fake):
    a = queue.submit("fake", "alice", {"eta": 30.0}, label="first").id
    wait_for(lambda: state(queue, a) == "running")
    b = queue.submit("fake", "bob", {}).id
    c = queue.submit("fake", "alice", {}).id
    wait_for(lambda: queue.get(a).eta_s == 30.0)
    jb, jc = queue.get(b), queue.get(c)
    assert (jb.state, jb.position, jb.wait_s) == ("queued", 1, 30.0)
    assert (jc.position, jc.wait_s) == (2, None)  # b's own duration is unknown: so is c's wait
    assert [j.id for j in queue.jobs()] == [a, b, c] and queue.get(a).label == "first"
    fake.gates[a].set()
    wait_for(lambda: state(queue, b) == "running")
    assert queue.get(c).position == 1


def test_estimate_waits():
    assert estimate_waits([10.0], [5.0, 7.0, None], 1) == [10.0, 15.0, 22.0]
    assert estimate_waits([10.0], [5.0, 7.0], 2) == [0.0, 5.0]  # a free slot: starts at once
    assert estimate_waits([None], [5.0], 1) == [None]
    assert estimate_waits([], [None, 1.0], 1) == [0.0, None]


def test_cancel_queued_and_running(queue, fake):
    a = queue.submit("fake", "alice", {}).id
    wait_for(lambda: state(queue, a) == "running")
    b = queue.submit("fake", "alice", {}).id
    c = queue.submit("fake", "bob", {"open": True}).id
    assert queue.cancel(b, ALICE, POLICY).state == "cancelled"  # left the line before it ran
    assert queue.get(c).position == 1
    queue.cancel(a, ALICE, POLICY)
    wait_for(lambda: state(queue, a) == "cancelled", what="the running job to stop")
    assert queue.get(a).error == "stopped by request"
    wait_for(lambda: state(queue, c) == "completed")
    assert [r[0] for r in fake.ran] == [c]  # b never ran
    with pytest.raises(JobStateError, match=f"job {c} is completed"):
        queue.cancel(c, BOB, POLICY)


def test_only_the_owner_or_the_admin_may_cancel_or_resume(queue, fake):
    a = queue.submit("fake", "alice", {}).id
    with pytest.raises(NotAllowed, match=rf"'bob' may not cancel job {a} of 'alice'"):
        queue.cancel(a, BOB, POLICY)
    assert state(queue, a) in ("queued", "running")
    queue.cancel(a, ADMIN, POLICY)
    wait_for(lambda: state(queue, a) == "cancelled")
    with pytest.raises(NotAllowed, match=f"may not resume job {a} of 'alice'"):
        queue.resume(a, BOB, POLICY)
    assert queue.resume(a, ADMIN, POLICY).resume is True


def test_a_failed_job_records_its_error_and_the_next_one_runs(queue, fake):
    bad = queue.submit("fake", "alice", {"open": True, "fail": True}).id
    good = queue.submit("fake", "alice", {"open": True}).id
    wait_for(lambda: state(queue, good) == "completed")
    assert (state(queue, bad), queue.get(bad).error) == ("failed", "boom")


def test_a_new_queue_finds_running_jobs_interrupted_and_resume_requeues_them(tmp_path, fake):
    first = JobQueue(tmp_path, runners=RUNNERS, poll_s=0.05)
    a = first.submit("fake", "alice", {"eta": 5.0}).id
    wait_for(lambda: state(first, a) == "running")
    b = first.submit("fake", "bob", {}).id
    first.close()  # the app process "dies": its rows stay as they were

    second = JobQueue(tmp_path, runners=RUNNERS, poll_s=0.05)
    try:
        assert state(second, a) == "interrupted" and state(second, b) in ("queued", "running")
        fake.gates[a].set()  # the old worker thread ends now: it must not overwrite what the new queue decided
        time.sleep(0.2)
        assert state(second, a) == "interrupted"
        wait_for(lambda: state(second, b) == "running")
        fake.gates[b].set()
        wait_for(lambda: state(second, b) == "completed")
        assert second.resume(a, ALICE, POLICY).state in ("queued", "running")
        wait_for(lambda: state(second, a) == "completed")
        assert fake.ran[-1][0] == a and fake.ran[-1][3] is True  # ran again, told to resume
        with pytest.raises(JobStateError, match="cannot be resumed"):
            second.resume(a, ALICE, POLICY)
    finally:
        second.close()


def test_an_evaluation_config_survives_the_database():
    import json

    from evaluation.prompts import PromptConfig
    from evaluation.run import EvalConfig
    from jobs.runners import eval_config_from_dict, eval_config_to_dict

    config = EvalConfig(data=("a.jsonl", "b.jsonl"), out_dir="out", models=(None, "lora-1"), limit=3, shots=1,
                        shots_data=("s.jsonl",), prompt=PromptConfig(system="你好"))
    assert eval_config_from_dict(json.loads(json.dumps(eval_config_to_dict(config)))) == config


def test_an_evaluation_job_reports_progress_stops_and_resumes(tmp_path, monkeypatch):
    from pathlib import Path

    from evaluate_fixtures import build_always_b_model, hold_first_run_after_two_items
    from evaluation.run import EvalConfig
    from jobs.runners import eval_config_to_dict

    hold_first_run_after_two_items(monkeypatch)

    model = build_always_b_model(tmp_path / "always-b")
    mc = str(Path(__file__).resolve().parent.parent / "data" / "mc_sample.jsonl")
    config = EvalConfig(data=(mc,), out_dir=str(tmp_path / "evaluations"), batch_size=1, limit=12)
    params = {"config": eval_config_to_dict(config), "model": str(model), "data_dir": str(tmp_path / "runs")}
    queue = JobQueue(tmp_path / "runs", runners=RUNNERS, poll_s=0.05)
    try:
        job = queue.submit("evaluate", "alice", params)
        wait_for(lambda: (queue.get(job.id).done or 0) >= 2, what="a few items done")
        assert queue.get(job.id).total == 12 and queue.get(job.id).info["set"] == "mc_sample"
        queue.cancel(job.id, ALICE, POLICY)
        wait_for(lambda: state(queue, job.id) == "cancelled")
        assert "run again with the same settings to resume" in queue.get(job.id).error
        queue.resume(job.id, ALICE, POLICY)
        wait_for(lambda: state(queue, job.id) == "completed", timeout_s=60)
        [cell] = queue.output(job.id)
        assert cell.metrics["accuracy"] > 0 and len(cell.rows) == 12
    finally:
        queue.close()


def test_an_evaluation_jobs_progress_is_the_whole_run_across_its_cells():
    """evaluate() reports per (model, set) cell with the run's size on each report; the job's row counts on."""
    from evaluation.run import Progress, with_run_total
    from jobs.runners import EvalProgress

    rows = []

    class Control:
        def progress(self, done, total, eta_s, **info):
            rows.append((done, total, info["set"]))

    report = with_run_total(EvalProgress(Control()), run_total=5)
    for cell, done in (("a", 2), ("a", 3), ("b", 1), ("b", 2)):
        report(Progress("m", cell, done, total=3 if cell == "a" else 2, items_per_s=1.0, eta_s=None))
    assert rows == [(2, 5, "a"), (3, 5, "a"), (4, 5, "b"), (5, 5, "b")]


# ---------------------------------------------------------------------------------------------------------------
# Real training jobs


def test_two_training_jobs_from_two_owners_run_one_after_another(tmp_path, tiny_chat_model):
    from jobs.files import create_job
    from tests.finetune_fixtures import write_alpaca
    from tests.test_finetune_train import quick_config

    data, runs = write_alpaca(tmp_path / "qa.jsonl"), tmp_path / "runs"
    queue = JobQueue(runs, runners=RUNNERS, poll_s=0.2)
    try:
        jobs = []
        for owner in ("alice", "bob"):
            files = create_job(quick_config(tiny_chat_model, data, max_steps=4, sample_every=0,
                                            adapter_name=f"{owner}-lora"), runs)
            jobs.append((queue.submit("train", owner, {"job_dir": str(files.dir)}, job_id=files.job_id), files))
        assert queue.get(jobs[1][0].id).position == 1
        wait_for(lambda: all(state(queue, job.id) in ("completed", "failed") for job, _ in jobs), timeout_s=240,
                 what="both training jobs")
        first, second = (queue.get(job.id) for job, _ in jobs)
        assert first.state == second.state == "completed", (first.error, second.error)
        assert (first.owner, second.owner, first.done, first.total) == ("alice", "bob", 4, 4)
        # The job processes themselves did not overlap: the second loaded its model after the first had finished.
        s1, s2 = (files.read_status() for _, files in jobs)
        assert s1["finished_at"] <= s2["started_at"]
        for owner in ("alice", "bob"):
            assert (runs / "adapters" / f"{owner}-lora" / "adapter_model.safetensors").is_file()
    finally:
        queue.close()


# ---------------------------------------------------------------------------------------------------------------
# A real app restart: `python app.py` killed while it trains, started again on the same data dir (in this process:
# the same build_app as app.py's, without a second cold start of gradio, which takes half a minute on a busy CPU)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(data_dir, port: int, model: str, log_path):
    import os
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir),
                                 "--model", model], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def ready():
        assert proc.poll() is None, Path(log_path).read_text()[-3000:]
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200
        except OSError:
            return False

    wait_for(ready, timeout_s=180, what="the app to serve")
    return proc


def kill_group(pid: int) -> None:
    import os
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def job_row(client, job_id: str) -> dict:
    table, _ = client.predict(None, api_name="/jobs_list")
    rows = [dict(zip(table["headers"], row)) for row in table["data"]]
    return next(r for r in rows if r["id"] == job_id)


def test_restart_keeps_the_job_and_resume_finishes_it(tmp_path, tiny_chat_model, medtune_home):
    from gradio_client import Client, handle_file

    from jobs.files import JobFiles, read_jsonl
    from tests.finetune_fixtures import write_alpaca
    from tests.test_finetune_app import settings

    data, runs, port = write_alpaca(tmp_path / "qa.jsonl"), tmp_path / "runs", free_port()
    url, steps = f"http://127.0.0.1:{port}/", 100
    app, files = start_app(runs, port, str(tiny_chat_model), tmp_path / "app.log"), None
    try:
        values = settings(max_steps=steps, batch_size=2, logging_steps=5, save_steps=10, eval_steps=0, val_split=0,
                          sample_every=0, cutoff_len=128, learning_rate=1e-2, adapter_name="restart-run")
        update = Client(url, verbose=False).predict(str(tiny_chat_model), handle_file(str(data)), None, "auto", "",
                                                    *values, api_name="/finetune_start")
        files = JobFiles(runs / "jobs" / update["value"])
        # Killed once training has gone past its first checkpoint (one cut off while saving is skipped on resume:
        # tests/test_finetune_train.py).
        wait_for(lambda: list(files.checkpoints.glob("checkpoint-*")) and files.read_status().get("step", 0) > 10,
                 timeout_s=180, what="training past its first checkpoint")
    finally:
        kill_group(app.pid)  # the app, as a crash or an OOM kill would; then the job's own process group
        app.wait()
        if files is not None and files.read_status().get("pid"):
            kill_group(files.read_status()["pid"])
    before = files.read_status()
    assert before["state"] not in ("completed", "failed"), before
    assert files.config.is_file() and read_jsonl(files.metrics) and list(files.checkpoints.glob("checkpoint-*"))

    # The server again, a new process on the same data dir, as after a reboot.
    port = free_port()
    app = start_app(runs, port, str(tiny_chat_model), tmp_path / "app.log")
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert job_row(client, files.job_id)["state"] == "interrupted"
        assert client.predict(files.job_id, api_name="/finetune_status")[4]["state"] == "interrupted"
        client.predict(files.job_id, api_name="/jobs_resume")
        wait_for(lambda: job_row(client, files.job_id)["state"] in ("completed", "failed"), timeout_s=240,
                 what="the resumed job")
        row = job_row(client, files.job_id)
        assert row["state"] == "completed", files.log_tail()
        assert row["progress"] == f"{steps}/{steps}" and row["owner"] == "local"
    finally:
        kill_group(app.pid)
        app.wait()
    status = files.read_status()
    assert "checkpoint-" in status["resumed_from"] and status["step"] == steps
    assert (runs / "adapters" / "restart-run" / "adapter_model.safetensors").is_file()
    assert read_jsonl(files.metrics)[-1]["step"] == steps
