"""How far a training job has got, read from its folder: the one reader of a job's files for the tabs and the CLI.

    read_progress(files, job=row, since=last) -> JobProgress   # state, step, curves, samples, data report, log

The Fine-tune tab, the Jobs tab (its detail and its comparison of runs) and `python -m finetune jobs` / `compare`
render a JobProgress; none of them opens status.json, metrics.jsonl, samples.jsonl, data_report.json, best.json,
config.yaml or train.log itself, so a change of what a job writes is a change here and in jobs/files.py only.

Reads are bounded, as the Fine-tune tab asks every 2 s for as long as a page is open: with `since` (the JobProgress
the same caller read last time) only the lines appended to metrics.jsonl since then are read and parsed, and the
data report and config are reused while their files are unchanged; samples.jsonl and train.log are read from their
end (the last lines only), however long the run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from jobs.files import JobFiles
from jobs.process import is_alive, read_job
from jobs.status import JobStatus, from_stage
from jobs.store import Job

SAMPLES_SHOWN = 12  # the latest answers to the sample prompts
LOG_LINES = 40
TAIL_START = 64 * 1024  # bytes read from the end of samples.jsonl first; doubled while too few lines came back
TAIL_MAX = 4 * 1024 * 1024
CURVE_PREFIXES = ("accuracy:", "rouge-l:")  # task metrics the Fine-tune tab draws beside the loss (divided by 100)


@dataclass(frozen=True)
class Point:
    """One value of one curve: "loss", "eval_loss", or a task metric of a validation set ("accuracy:mc_val")."""

    step: int
    name: str
    value: float


@dataclass(frozen=True)
class Sample:
    step: int
    prompt: str
    answer: str


@dataclass(frozen=True)
class DataSummary:
    """data_report.json in short: rows read / kept / rejected, conversations truncated, training rows."""

    summary: str
    truncated: int
    train_rows: int
    rejected: int

    def text(self) -> str:
        return f"{self.summary}; {self.truncated} truncated; {self.train_rows} training rows"


@dataclass(frozen=True)
class Best:
    """The checkpoint chosen so far (checkpoints/best.json): the adapter is this step's weights."""

    select_by: str
    step: int
    value: float
    eval_share: float | None = None


@dataclass(frozen=True)
class _Cursor:
    """Where the last read of the job's appended and rarely written files stopped (see `since`)."""

    metrics_inode: int | None = None
    metrics_offset: int = 0
    stamps: dict = field(default_factory=dict)  # file name -> (mtime_ns, size) when it was last read


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    status: JobStatus  # the one state (the queue's, or from the stage and the owner lock)
    stage: str  # what the job process wrote (training, saving, ...); the queue's state while it waits
    step: int = 0
    total_steps: int | None = None
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    position: int | None = None  # queued: 1 = next to start
    points: tuple[Point, ...] = ()  # every curve point, in the order they were logged
    samples: tuple[Sample, ...] = ()  # the latest SAMPLES_SHOWN, oldest first
    data: DataSummary | None = None
    best: Best | None = None
    select_by: str | None = None  # the selection as the job reported it in status.json
    best_step: int | None = None
    best_value: float | None = None
    eval_share: float | None = None
    stopped_early: bool = False
    error: str | None = None
    error_code: str | None = None  # e.g. "preflight.too_large": the page says it in its own language
    error_params: dict = field(default_factory=dict)
    adapter_dir: str | None = None
    adapter_name: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    updated_at: float | None = None
    finished_at: float | None = None
    config: dict = field(default_factory=dict)  # the job's config.yaml (learning rate, rank, data file)
    has_checkpoint: bool = False  # Resume continues from a checkpoint (else from the start)
    log: str = ""  # the last LOG_LINES of train.log
    record: dict = field(default_factory=dict)  # status.json as written (what the API's finetune_status returns)
    cursor: _Cursor = field(default_factory=_Cursor, repr=False)

    @classmethod
    def from_record(cls, record: dict, **more) -> "JobProgress":
        """The fields status.json holds; `more`: what the other files say (curves, samples, ...)."""
        stage = str(record.get("state") or "unknown")
        values = {name: record.get(name) for name in (
            "total_steps", "epoch", "loss", "eval_loss", "tokens_per_s", "eta_s", "position", "select_by",
            "best_step", "best_value", "eval_share", "error", "error_code", "adapter_dir", "adapter_name",
            "created_at", "started_at", "updated_at", "finished_at")}
        values.update(job_id=str(record.get("job_id") or ""), status=from_stage(stage, alive=False), stage=stage,
                      step=record.get("step") or 0, stopped_early=bool(record.get("stopped_early")),
                      error_params=dict(record.get("error_params") or {}), record=dict(record))
        return cls(**{**values, **more})

    @property
    def data_file(self) -> str | None:
        data = self.config.get("data")
        return data if isinstance(data, str) and data else None

    def series(self, name: str) -> list[tuple[int, float]]:
        return [(p.step, p.value) for p in self.points if p.name == name]

    def metric_rows(self) -> list[dict]:
        """The curve points as finetune.compare reads a run's metrics: one {"step", name: value} row each."""
        return [{"step": p.step, p.name: p.value} for p in self.points]


def read_progress(files: JobFiles, job: Job | None = None, since: JobProgress | None = None,
                  curves: bool = True, log_lines: int = LOG_LINES) -> JobProgress:
    """The job's progress now. `job`: its row in the queue (then the row's state is the status, and while it waits
    its place in line shows, which the job's files cannot know). `since`: the JobProgress this caller read last
    (same job): only what was appended since is read. `curves`: False skips the curves and samples (a list)."""
    record = read_job(files)  # status.json, marked failed / stopped when its process is gone without a word
    if job is not None and (job.state in (JobStatus.QUEUED, JobStatus.INTERRUPTED) or record.get("state") == "created"):
        record = {**record, "state": str(job.state), "position": job.position}
    since = since if since is not None and since.job_id == files.job_id else None
    cursor = since.cursor if since is not None else _Cursor()
    points, samples = (since.points if since is not None else ()), ()
    if curves:
        rows, inode, offset, fresh = _appended_rows(files.metrics, cursor)
        points = (() if fresh else points) + tuple(_points(rows))
        cursor = _Cursor(inode, offset, cursor.stamps)
        samples = tuple(Sample(r.get("step", 0), str(r.get("prompt", "")), str(r.get("answer") or ""))
                        for r in _last_rows(files.samples, SAMPLES_SHOWN))
    stamps = {name: _stamp(path) for name, path in (("data", files.data_report), ("config", files.config))}
    reuse = since is not None and all(cursor.stamps.get(k) == v for k, v in stamps.items())
    data = since.data if reuse else _data_summary(files.data_report)
    config = since.config if reuse else _config(files.config)
    if job is not None:
        status = job.state
    else:
        status = from_stage(record.get("state"), is_alive(files))
    return JobProgress.from_record(
        {**record, "job_id": files.job_id}, status=status, points=points, samples=samples, data=data,
        best=_best(files.checkpoints / "best.json"), config=config,
        has_checkpoint=any(files.checkpoints.glob("checkpoint-*")) if files.checkpoints.is_dir() else False,
        log=files.log_tail(log_lines) if log_lines else "", cursor=_Cursor(cursor.metrics_inode,
                                                                           cursor.metrics_offset, stamps))


def read_log_since(files: JobFiles, offset: int, last: bool = False) -> tuple[str, int]:
    """What train.log gained since byte `offset`, and the offset to ask from next time: for a terminal that follows
    a job (`python -m finetune train --processes N`) without reading the log again each time. Complete lines only
    (a character is never cut in two), unless `last`: the job has ended, its last line may lack a newline."""
    try:
        with files.log.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return "", offset
    end = len(data) if last else data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", errors="replace"), offset + end


def compare_run(files: JobFiles) -> dict:
    """A finished (or stopped) run as finetune.compare reads one: its name, metric rows, config and best point."""
    progress = read_progress(files, log_lines=0)
    if not progress.points:
        raise FileNotFoundError(f"{files.dir}: no metrics.jsonl (give a job directory, a job id or an adapter "
                                "directory)")
    best = progress.best
    return {"name": files.dir.name, "metrics": progress.metric_rows(), "config": progress.config,
            "best": {} if best is None else {"select_by": best.select_by, "step": best.step, "value": best.value,
                                            "eval_share": best.eval_share}}


# ---------------------------------------------------------------------------------------------------------------


def _appended_rows(path: Path, cursor: _Cursor) -> tuple[list[dict], int | None, int, bool]:
    """The rows appended to a JSONL file since the cursor, the file's inode, the offset to read from next time, and
    whether this read started over: the file is new, or was replaced (a resumed run drops the points after its
    checkpoint by writing a new file), or shrank."""
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            fresh = cursor.metrics_inode != st.st_ino or st.st_size < cursor.metrics_offset
            start = 0 if fresh else cursor.metrics_offset
            f.seek(start)
            data = f.read(st.st_size - start)
    except FileNotFoundError:
        return [], None, 0, True
    end = data.rfind(b"\n") + 1  # a line being appended right now is read whole next time
    return _parse_lines(data[:end]), st.st_ino, start + end, fresh


def _last_rows(path: Path, n: int) -> list[dict]:
    """The last n rows of a JSONL file, read from its end: a window that doubles until it holds n complete lines."""
    try:
        with path.open("rb") as f:
            size, window = os.fstat(f.fileno()).st_size, TAIL_START
            while True:
                f.seek(max(0, size - window))
                data = f.read(min(size, window))
                if window < size:
                    data = data[data.find(b"\n") + 1:]  # the first line is cut by the window
                if data.count(b"\n") >= n or window >= size or window >= TAIL_MAX:
                    return _parse_lines(data)[-n:]
                window *= 2
    except FileNotFoundError:
        return []


def _parse_lines(data: bytes) -> list[dict]:
    rows = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being appended right now; it is complete on the next read
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _points(rows: list[dict]) -> list[Point]:
    """Each logged row's curve values: its training loss (or else its validation loss), then its task metrics."""
    points = []
    for row in rows:
        step = row.get("step", 0)
        for name in ("loss", "eval_loss"):
            if _number(row.get(name)):
                points.append(Point(step, name, row[name]))
                break
        points += [Point(step, k, v) for k, v in row.items() if ":" in k and _number(v)]
    return points


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not written yet, or being replaced right now
    return value if isinstance(value, dict) else None


def _data_summary(path: Path) -> DataSummary | None:
    report = _read_json(path)
    if report is None or "summary" not in report:
        return None
    return DataSummary(str(report["summary"]), report.get("truncated", 0), report.get("train_rows", 0),
                       len(report.get("rejected") or []))


def _best(path: Path) -> Best | None:
    best = _read_json(path)
    if not best or best.get("step") is None or best.get("value") is None:
        return None
    return Best(str(best.get("select_by", "")), best["step"], best["value"], best.get("eval_share"))


def _config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}
