"""jobs/progress.py: the one reader of a training job's files. What the Fine-tune tab, the Jobs tab, `python -m
finetune jobs` and `compare` show comes from one JobProgress; the 2 s timer reads only what the job appended since
its last tick. No model, no training: the job folders are written through the job system's own writers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import gradio as gr
import pytest

from finetune.config import TrainConfig
from jobs.files import create_job, write_json_atomic
from jobs.process import OwnerLock
from jobs.progress import SAMPLES_SHOWN, TAIL_START, JobProgress, Point, compare_run, read_log_since, read_progress
from jobs.status import JobStatus
from jobs.store import Job

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "train_sample.jsonl"


@pytest.fixture
def files(tmp_path):
    return create_job(TrainConfig(model="demo", data=str(DATA), adapter_name="progress-run"), tmp_path / "runs")


def write_run(files, steps: int = 4) -> None:
    """A run as the job worker's reporter leaves it: a training loss per step, a validation loss and a task metric
    at step 2, answers to the sample prompts, the data report, the best checkpoint so far, a log."""
    files.update_status(state="training", step=steps, total_steps=10, epoch=0.4, loss=1.5, tokens_per_s=120.0,
                        eta_s=30.0, select_by="accuracy:mc_val", best_step=2, best_value=75.0, eval_share=0.25)
    for step in range(1, steps + 1):
        files.append_metric({"step": step, "epoch": step / 10, "loss": 3.0 - step / 2, "learning_rate": 1e-4})
        if step == 2:
            files.append_metric({"step": 2, "eval_loss": 2.2})
            files.append_metric({"step": 2, "accuracy:mc_val": 75.0, "rouge-l:qa_val": 31.5, "eval_seconds": 1.2})
    for step in range(1, 21):
        files.append_sample({"step": step, "prompt": "头痛怎么办？", "answer": f"answer {step}"})
    write_json_atomic(files.data_report, {"summary": "6 of 7 rows kept (alpaca)", "truncated": 1, "train_rows": 6,
                                          "rejected": [{"line": 7, "field": "output", "reason": "not a string"}]})
    files.checkpoints.mkdir()
    (files.checkpoints / "checkpoint-2").mkdir()
    write_json_atomic(files.checkpoints / "best.json", {"select_by": "accuracy:mc_val", "step": 2, "value": 75.0})
    files.log.write_text("[job] loading\n[job] step 4\n", encoding="utf-8")


def test_a_running_job_read_whole(files):
    write_run(files)
    with OwnerLock(files):  # a process owns the job: it runs, whoever started it
        p = read_progress(files)
    assert (p.job_id, p.status, p.stage, p.step, p.total_steps, p.epoch) == (
        files.job_id, JobStatus.RUNNING, "training", 4, 10, 0.4)
    assert (p.loss, p.tokens_per_s, p.eta_s, p.adapter_name) == (1.5, 120.0, 30.0, "progress-run")
    assert p.series("loss") == [(1, 2.5), (2, 2.0), (3, 1.5), (4, 1.0)]
    assert p.series("eval_loss") == [(2, 2.2)] and p.series("accuracy:mc_val") == [(2, 75.0)]
    assert Point(2, "rouge-l:qa_val", 31.5) in p.points and not p.series("eval_seconds")  # curves only
    assert [s.answer for s in p.samples] == [f"answer {n}" for n in range(21 - SAMPLES_SHOWN, 21)]
    assert p.data.text() == "6 of 7 rows kept (alpaca); 1 truncated; 6 training rows" and p.data.rejected == 1
    assert (p.best.select_by, p.best.step, p.best.value) == ("accuracy:mc_val", 2, 75.0)
    assert (p.select_by, p.best_step, p.best_value, p.eval_share) == ("accuracy:mc_val", 2, 75.0, 0.25)
    assert p.has_checkpoint and p.data_file == str(DATA) and p.config["adapter_name"] == "progress-run"
    assert p.log.endswith("[job] step 4") and p.record["state"] == "training"

    # The owner is gone without a final word (killed): the job is failed, as `python -m finetune jobs` says.
    gone = read_progress(files, curves=False, log_lines=0)
    assert (gone.status, gone.stage, gone.points, gone.log) == (JobStatus.FAILED, "failed", (), "")
    assert "gone" in gone.error


def test_the_timer_reads_only_what_was_appended(files):
    write_run(files, steps=2)
    first = read_progress(files)
    # Damage the first line in place (same length, same file): a read from the start would lose its point.
    raw = files.metrics.read_bytes()
    cut = raw.index(b"\n")
    files.metrics.write_bytes(b"x" * cut + raw[cut:])
    files.append_metric({"step": 3, "loss": 1.5})
    with files.metrics.open("a", encoding="utf-8") as f:
        f.write('{"step": 4, "loss"')  # a line being written right now
    later = read_progress(files, since=first)
    assert later.points == first.points + (Point(3, "loss", 1.5),)  # the start was not read again
    assert read_progress(files).series("loss")[0] == (2, 2.0)  # a fresh read: the damaged line is skipped
    with files.metrics.open("a", encoding="utf-8") as f:
        f.write(': 1.0}\n')
    done = read_progress(files, since=later)
    assert done.series("loss")[-2:] == [(3, 1.5), (4, 1.0)]  # the half line, once it was whole, counted once
    assert done.data is first.data and done.config is first.config  # unchanged files: not read again

    write_json_atomic(files.data_report, {"summary": "7 of 7 rows kept", "truncated": 0, "train_rows": 7})
    assert read_progress(files, since=done).data.train_rows == 7

    files.truncate_metrics(2)  # a resumed run drops the points after its checkpoint: a new file
    resumed = read_progress(files, since=done)
    assert max(p.step for p in resumed.points) == 2 and resumed.series("loss") == [(2, 2.0)]


def test_long_files_are_read_from_their_end(files, tmp_path):
    answer = "很长的回答。" * 400  # about 7 KB a line: the samples file is many times the first window
    for step in range(1, 61):
        files.append_sample({"step": step, "prompt": "p", "answer": f"{step}:{answer}"})
    assert files.samples.stat().st_size > 4 * TAIL_START
    p = read_progress(files)
    assert [s.step for s in p.samples] == list(range(61 - SAMPLES_SHOWN, 61))
    assert p.samples[-1].answer == f"60:{answer}"

    other = create_job(TrainConfig(model="demo", data=str(DATA)), tmp_path / "runs", job_id="other")
    assert read_progress(other, since=p).samples == ()  # another job's `since` is not this job's


def test_a_queued_job_shows_the_queue_state_and_place(files):
    row = Job(files.job_id, "train", "alice", "progress-run", {"job_dir": str(files.dir)}, JobStatus.QUEUED, 3,
              time.time(), position=2)
    p = read_progress(files, job=row)
    assert (p.status, p.stage, p.position, p.record["state"], p.record["position"]) == (
        JobStatus.QUEUED, "queued", 2, "queued", 2)
    assert p.points == () and p.samples == () and p.data is None and p.best is None and not p.has_checkpoint


def test_compare_reads_a_job_folder_through_the_progress(files):
    from finetune.compare import table, task_metrics

    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        compare_run(files)
    write_run(files)
    run = compare_run(files)
    assert task_metrics([run]) == ["accuracy:mc_val", "rouge-l:qa_val", "eval_loss"]
    row = table([run], "accuracy:mc_val")[0]
    assert (row["run"], row["steps"], row["selected_step"], row["best accuracy:mc_val"], row["at_step"]) == (
        files.job_id, 4, 2, 75.0, 2)
    assert (row["lr"], row["rank"]) == (TrainConfig().learning_rate, TrainConfig().lora_rank)


def test_a_followed_log_is_read_from_where_it_stopped(files):
    assert read_log_since(files, 0) == ("", 0)
    files.log.write_text("one\ntw", encoding="utf-8")
    text, offset = read_log_since(files, 0)
    assert (text, offset) == ("one\n", 4)
    with files.log.open("a", encoding="utf-8") as f:
        f.write("o\nthree\n")
    assert read_log_since(files, offset) == ("two\nthree\n", 14)
    with files.log.open("a", encoding="utf-8") as f:
        f.write("exit 0")  # the job has ended: its last line, newline or not
    assert read_log_since(files, 14) == ("", 14) and read_log_since(files, 14, last=True) == ("exit 0", 20)


def test_a_status_record_alone_renders(files):
    p = JobProgress.from_record({"job_id": "j", "state": "failed", "error": "boom", "step": 3})
    assert (p.job_id, p.status, p.stage, p.step, p.error, p.points) == ("j", JobStatus.FAILED, "failed", 3, "boom", ())


def test_the_fine_tune_tab_timer_keeps_its_last_read(files, tmp_path):
    """The tab's 2 s tick gets the page's last JobProgress back (gr.State) and shows the same as a full read."""
    from ui.context import AppContext, with_services
    from ui.finetune_tab import do_status, do_tick

    ctx = with_services(AppContext(data_dir=tmp_path / "runs"))
    try:
        write_run(files, steps=2)
        request = gr.Request()
        *outputs, last = do_tick(files.job_id, None, request, ctx)
        files.append_metric({"step": 3, "loss": 1.5})
        *outputs, last = do_tick(files.job_id, last, request, ctx)
        full = do_status(files.job_id, request, ctx)
        assert last.series("loss")[-1] == (3, 1.5) and outputs[0] == full[0] and outputs[1].equals(full[1])
        assert outputs[2:] == list(full[2:])
    finally:
        ctx.jobs.close()


def test_no_tab_opens_a_job_file():
    """ui/ renders JobProgress; the job's files are read in jobs/progress.py only."""
    reads = re.compile(r"read_status\(|read_job\(|read_jsonl\(|log_tail\(|best\.json|config\.yaml|load_run\(|"
                       r"files\.(metrics|samples|data_report|log|status|checkpoints|config)\b|jobs\.process\b")
    found = [f"{path.name}:{n}" for path in sorted((ROOT / "ui").glob("*.py")) if path.name != "strings.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if reads.search(line)]
    assert not found, found

