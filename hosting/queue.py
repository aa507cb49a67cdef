"""The shared job queue of a server: training and evaluation jobs from all users in one line, kept in SQLite.

    <data_dir>/queue.sqlite   a row per job: kind, owner, label, params, state, times, progress, ETA, error

States: queued -> running -> completed | failed | cancelled. A job that was running when the app process died is
found "running" by the next process and becomes "interrupted"; resume() puts it back in the line with resume=True
(training continues from its last checkpoint, an evaluation skips the items already on disk). A scheduler thread
starts the oldest queued jobs while fewer than max_running run.

Each kind has a small runner, run in a worker thread: it returns (completed), raises JobCancelled (cancelled) or
anything else (failed, with the message). What it returns is kept in memory for the tab that waits for it
(output(); the last few only): everything that must survive a restart is in the job's own files. "train" starts the job process of finetune/jobs.py and follows its
status.json; "evaluate" calls evaluation.run.evaluate. What a job produces lives in its own files (the training
job directory, the evaluation cells): the queue only records who asked for what and where it stands.

One app process per data dir: a new queue on the database treats every running row as left by a dead process.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
import sqlite3
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

STATES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
FINAL = ("completed", "failed", "cancelled")
RESUMABLE = ("interrupted", "cancelled", "failed")
POLL_S = 1.0  # how often the scheduler and the training follower look again when nothing wakes them
KEEP_OUTPUTS = 16  # runners' return values kept in memory

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    line INTEGER NOT NULL,              -- place in the line; a resumed job goes to the back
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    done INTEGER,
    total INTEGER,
    eta_s REAL,
    info TEXT NOT NULL DEFAULT '{}',    -- what the runner reports beside progress (loss, items/s, current set)
    error TEXT,
    resume INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    worker TEXT                         -- the queue instance running it: a stale worker never overwrites a newer run
)
"""


class QueueError(Exception):
    pass


class JobNotFound(QueueError):
    def __init__(self, job_id: str):
        super().__init__(f"no job {job_id!r} in the queue")
        self.job_id = job_id


class NotAllowed(QueueError, PermissionError):
    def __init__(self, job_id: str, owner: str, user: str, action: str):
        super().__init__(f"user {user!r} may not {action} job {job_id} of {owner!r}: only its owner or the admin may")
        self.job_id, self.owner, self.user, self.action = job_id, owner, user, action


class JobStateError(QueueError):
    def __init__(self, job_id: str, state: str, action: str):
        done = {"cancel": "cancelled", "resume": "resumed"}.get(action, action)
        super().__init__(f"job {job_id} is {state}; it cannot be {done}")
        self.job_id, self.state, self.action = job_id, state, action


class JobCancelled(Exception):
    """Raised by a runner that stopped because it was asked to; the message says what was kept."""


class RunFailed(RuntimeError):
    """Raised by a runner whose work failed; the message is the job's error."""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    owner: str
    label: str
    params: dict
    state: str
    line: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    done: int | None = None
    total: int | None = None
    eta_s: float | None = None
    info: dict = field(default_factory=dict)
    error: str | None = None
    resume: bool = False
    stop_requested: bool = False
    position: int | None = None  # queued jobs: 1 = next to start
    wait_s: float | None = None  # queued jobs: estimated time until it starts; None = unknown

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        values = {k: row[k] for k in row.keys() if k != "worker"}
        values.update(params=json.loads(values["params"]), info=json.loads(values["info"]),
                      resume=bool(values["resume"]), stop_requested=bool(values["stop_requested"]))
        return cls(**values)


@dataclass(frozen=True)
class Control:
    """What a runner gets besides its job: the stop flag and a way to report progress."""

    queue: "JobQueue"
    job_id: str
    stop: threading.Event

    def progress(self, done: int | None, total: int | None, eta_s: float | None = None, **info) -> None:
        self.queue._progress(self.job_id, done, total, eta_s, info)


def _interrupted(job: Job) -> str:
    return "interrupted"


def _nothing_known(job: Job) -> dict:
    return {}


@dataclass(frozen=True)
class Runner:
    run: Callable[[Job, Control], object]
    # The state of a job found "running" when a queue starts: "running" (its work goes on elsewhere: follow it),
    # "completed", "failed", or "interrupted".
    after_restart: Callable[[Job], str] = _interrupted
    # What the job's own files say it reached, read when a queue starts and finds it ended while no app was
    # watching: {"done", "total", "error"} (any of them). Else the row keeps the last progress seen before the
    # restart, and a finished job shows "completed, 1/45".
    final_report: Callable[[Job], dict] = _nothing_known


RUNNERS: dict[str, Runner] = {}


def register_runner(kind: str, runner: Runner) -> None:
    RUNNERS[kind] = runner


def estimate_waits(running_etas: list[float | None], queued_etas: list[float | None], slots: int) -> list:
    """For each queued job in line order, the seconds until it starts: slots free up as the jobs ahead finish.
    None where an ETA ahead is unknown (a fresh job's duration is unknown until it has run a while)."""
    free = [math.inf if e is None else e for e in running_etas] + [0.0] * max(0, slots - len(running_etas))
    heapq.heapify(free)
    waits = []
    for eta in queued_etas:
        start = heapq.heappop(free)
        waits.append(None if math.isinf(start) else start)
        heapq.heappush(free, math.inf if eta is None else start + eta)
    return waits


class JobQueue:
    def __init__(self, data_dir: Path | str, max_running: int = 1, runners: dict[str, Runner] | None = None,
                 poll_s: float = POLL_S):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "queue.sqlite"
        self.max_running = max(1, int(max_running))
        self.runners = RUNNERS if runners is None else runners
        self.poll_s = poll_s
        self.token = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._stops: dict[str, threading.Event] = {}
        self._outputs: OrderedDict[str, object] = OrderedDict()
        self._db = self._connect()
        self._recover()
        self._thread = threading.Thread(target=self._schedule_loop, name=f"job-queue:{self.path}", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        # One connection shared by the app's threads under self._lock; autocommit, explicit transactions.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across an app crash, cheap per progress update
        db.executescript(SCHEMA)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _runner(self, kind: str) -> Runner | None:
        return self.runners.get(kind)

    # -- reading -------------------------------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """Every job: running, then queued in line order, then the rest newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY line").fetchall()
        jobs = self._with_positions([Job.from_row(r) for r in rows])
        order = {"running": 0, "queued": 1}
        return sorted(jobs, key=lambda j: (order.get(j.state, 2), j.line if j.state in ACTIVE else -j.created_at))

    def output(self, job_id: str):
        """What the job's runner returned, if it completed in this process not long ago; else None."""
        with self._lock:
            return self._outputs.get(job_id)

    def get(self, job_id: str) -> Job:
        for job in self.jobs():
            if job.id == job_id:
                return job
        raise JobNotFound(job_id)

    def _with_positions(self, jobs: list[Job]) -> list[Job]:
        queued = [j for j in jobs if j.state == "queued"]  # already in line order
        waits = estimate_waits([j.eta_s for j in jobs if j.state == "running"], [j.eta_s for j in queued],
                               self.max_running)
        placed = {j.id: dataclasses.replace(j, position=n, wait_s=w) for n, (j, w) in enumerate(zip(queued, waits), 1)}
        return [placed.get(j.id, j) for j in jobs]

    # -- what users do -------------------------------------------------------------------------------------------

    def submit(self, kind: str, owner: str, params: dict, label: str = "", job_id: str | None = None,
               resume: bool = False) -> Job:
        if self._runner(kind) is None:
            raise QueueError(f"unknown job kind {kind!r}; known: {', '.join(sorted(self.runners))}")
        job_id = job_id or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        try:
            with self._tx() as db:
                db.execute("INSERT INTO jobs (id, kind, owner, label, params, state, line, created_at, resume) "
                           "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                           (job_id, kind, owner, label or job_id, json.dumps(params, ensure_ascii=False),
                            self._next_line(db), time.time(), int(resume)))
        except sqlite3.IntegrityError:
            raise QueueError(f"a job {job_id!r} is already in the queue") from None
        self._wake.set()
        return self.get(job_id)

    def cancel(self, job_id: str, user, policy) -> Job:
        """A queued (or interrupted) job leaves the line; a running one is asked to stop and ends as cancelled."""
        job = self._check(job_id, user, policy, "cancel")
        with self._tx() as db:
            state = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()["state"]
            if state in ("queued", "interrupted"):
                db.execute("UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ?", (time.time(), job_id))
            elif state == "running":
                db.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))
            else:
                raise JobStateError(job.id, state, "cancel")
        stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()
        self._wake.set()
        return self.get(job_id)

    def resume(self, job_id: str, user, policy) -> Job:
        """An interrupted, cancelled or failed job goes to the back of the line, to continue where it stopped."""
        job = self._check(job_id, user, policy, "resume")
        with self._tx() as db:
            done = db.execute("UPDATE jobs SET state = 'queued', resume = 1, line = ?, error = NULL, "
                              "finished_at = NULL, stop_requested = 0, worker = NULL WHERE id = ? AND state IN "
                              f"({', '.join('?' * len(RESUMABLE))})", (self._next_line(db), job_id, *RESUMABLE))
            if done.rowcount == 0:
                raise JobStateError(job.id, job.state, "resume")
        self._wake.set()
        return self.get(job_id)

    def _check(self, job_id: str, user, policy, action: str) -> Job:
        job = self.get(job_id)
        if not policy.can_manage_job(user, job.owner):
            raise NotAllowed(job.id, job.owner, user.name, action)
        return job

    @staticmethod
    def _next_line(db: sqlite3.Connection) -> int:
        return db.execute("SELECT COALESCE(MAX(line), 0) + 1 FROM jobs").fetchone()[0]

    # -- running -------------------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Rows left "running" by a previous process: follow the ones whose work goes on, mark the rest."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE state = 'running'").fetchall()
        for job in map(Job.from_row, rows):
            runner = self._runner(job.kind)
            outcome = runner.after_restart(job) if runner is not None else "interrupted"
            if outcome == "running":
                self._claim(job.id, fresh=False)
                if job.stop_requested:
                    self._stops[job.id].set()
                threading.Thread(target=self._work, args=(job,), daemon=True).start()
                continue
            report = runner.final_report(job) if runner is not None else {}
            with self._lock:
                self._db.execute("UPDATE jobs SET state = ?, worker = NULL, finished_at = ?, done = ?, total = ?, "
                                 "eta_s = ?, error = ? WHERE id = ?",
                                 (outcome, time.time() if outcome in FINAL else None, report.get("done", job.done),
                                  report.get("total", job.total), 0.0 if outcome in FINAL else job.eta_s,
                                  report.get("error", job.error), job.id))

    def _schedule_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.clear()  # before looking: a submit from now on wakes the wait below
            try:
                while (job := self._claim_next()) is not None:
                    threading.Thread(target=self._work, args=(job,), name=f"job:{job.id}", daemon=True).start()
            except sqlite3.Error:
                traceback.print_exc()  # a locked or full disk: try again on the next tick
            self._wake.wait(self.poll_s)

    def _claim_next(self) -> Job | None:
        with self._tx() as db:
            running = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'running'").fetchone()[0]
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY line LIMIT 1").fetchone()
            if self._closed.is_set() or running >= self.max_running or row is None:
                return None
            self._claim(row["id"], fresh=True)
        return self.get(row["id"])

    def _claim(self, job_id: str, fresh: bool) -> None:
        with self._lock:
            self._stops[job_id] = threading.Event()
            # A job followed after a restart keeps its start time and any stop asked for before.
            sets = "started_at = ?, stop_requested = 0" if fresh else "started_at = COALESCE(started_at, ?)"
            self._db.execute(f"UPDATE jobs SET state = 'running', {sets}, worker = ? WHERE id = ?",
                             (time.time(), self.token, job_id))

    def _work(self, job: Job) -> None:
        stop = self._stops[job.id]
        state, error = "completed", None
        try:
            output = self._runner(job.kind).run(job, Control(self, job.id, stop))
            if output is not None:
                self._keep_output(job.id, output)
        except JobCancelled as exc:
            state, error = "cancelled", str(exc) or None
        except Exception as exc:  # noqa: BLE001 - a failed job records why; the queue goes on with the next one
            if not stop.is_set():
                traceback.print_exc()
            state, error = ("cancelled", str(exc) or None) if stop.is_set() else ("failed", str(exc) or repr(exc))
        finally:
            with self._lock:
                self._db.execute("UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ? AND worker = ? "
                                 "AND state = 'running'", (state, error, time.time(), job.id, self.token))
                self._stops.pop(job.id, None)
            self._wake.set()

    def _keep_output(self, job_id: str, output) -> None:
        with self._lock:
            self._outputs[job_id] = output
            while len(self._outputs) > KEEP_OUTPUTS:
                self._outputs.popitem(last=False)

    def _progress(self, job_id: str, done, total, eta_s, info: dict) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET done = ?, total = ?, eta_s = ?, info = ? WHERE id = ? AND worker = ?",
                             (done, total, eta_s, json.dumps(info, ensure_ascii=False), job_id, self.token))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop starting jobs (running ones go on to their end); the database stays as it is."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout_s)


_SHARED: dict[str, JobQueue] = {}
_SHARED_LOCK = threading.Lock()


def shared_queue(data_dir: Path | str, max_running: int = 1) -> JobQueue:
    """The one queue per data dir in this process: every user and every tab submits to it."""
    key = str(Path(data_dir).resolve())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = JobQueue(data_dir, max_running)
        return _SHARED[key]


# ---------------------------------------------------------------------------------------------------------------
# Training: the job process of finetune/jobs.py, created (with its directory and config) when it was submitted


def run_training(job: Job, control: Control) -> None:
    from finetune.jobs import JobFiles, is_alive, read_job, start_job

    files = JobFiles(Path(job.params["job_dir"]))
    status = read_job(files)
    if status.get("state") == "completed":  # it finished while nobody was watching (e.g. during an app restart)
        control.progress(status.get("step"), status.get("total_steps"), 0.0, loss=status.get("loss"),
                         tokens_per_s=status.get("tokens_per_s"), stage="completed")
        return
    if not is_alive(files):  # alive: a job this queue found still running after a restart; follow it
        start_job(files, resume=job.resume)
    status = follow_training(files, control)
    if status["state"] == "failed":
        raise RunFailed(status.get("error") or f"training job {files.job_id} failed; see its train.log")
    if status["state"] == "stopped":
        raise JobCancelled(f"stopped at step {status.get('step', 0)}; the last checkpoint is kept for Resume")


def follow_training(files, control: Control) -> dict:
    from finetune.jobs import TERMINAL, read_job, stop_job

    stopping = False
    while True:
        status = read_job(files)
        control.progress(status.get("step"), status.get("total_steps"), status.get("eta_s"),
                         loss=status.get("loss"), tokens_per_s=status.get("tokens_per_s"), stage=status.get("state"))
        if status.get("state") in TERMINAL:
            return status
        if control.stop.is_set() and not stopping:
            stop_job(files)  # SIGTERM: the job saves a checkpoint at the end of its step, then exits
            stopping = True
        time.sleep(POLL_S / 2)


def training_after_restart(job: Job) -> str:
    from finetune.jobs import JobFiles, is_alive

    files = JobFiles(Path(job.params["job_dir"]))
    if is_alive(files):
        return "running"
    state = files.read_status().get("state")
    # A failure the job recorded itself (bad data, out of memory) stays a failure with its error; a job cut off
    # without a word (killed with the app) is interrupted, and Resume continues it from its last checkpoint.
    return {"completed": "completed", "failed": "failed"}.get(state, "interrupted")


def training_final_report(job: Job) -> dict:
    """The step reached and the error, from the job's status.json (the job process writes it to its end)."""
    from finetune.jobs import JobFiles

    status = JobFiles(Path(job.params["job_dir"])).read_status()
    report = {key: status[src] for key, src in (("done", "step"), ("total", "total_steps"))
              if status.get(src) is not None}
    if status.get("state") == "failed" and status.get("error"):
        report["error"] = str(status["error"])
    return report


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: evaluation.run.evaluate in the worker thread; cells are written batch by batch, a re-run resumes


def eval_config_to_dict(config) -> dict:
    return dataclasses.asdict(config)


def eval_config_from_dict(values: dict):
    from evaluation.prompts import PromptConfig
    from evaluation.run import EvalConfig

    values = {**values, "prompt": PromptConfig(**values["prompt"])}
    for name in ("data", "models", "shots_data"):
        values[name] = tuple(values[name])
    return EvalConfig(**values)


class EvalProgress:
    """evaluate() reports per (model, set) cell; the queue shows the whole run: items done of all cells."""

    def __init__(self, control: Control, total: int):
        self.control, self.total = control, total
        self.cell, self.cell_total, self.offset = None, 0, 0

    def __call__(self, p) -> None:
        if (p.model, p.dataset) != self.cell:
            self.offset += self.cell_total
            self.cell = (p.model, p.dataset)
        self.cell_total = p.total
        done = self.offset + p.done
        eta = (self.total - done) / p.items_per_s if p.items_per_s else None
        self.control.progress(done, self.total, eta, model=p.model, set=p.dataset, items_per_s=p.items_per_s)


def run_evaluation(job: Job, control: Control) -> list:
    from chat.registry import shared_registry
    from evaluation.run import EvalCancelled, evaluate, load_sets

    config = eval_config_from_dict(job.params["config"])
    sets = load_sets(config.data)
    total = len(config.models) * sum(min(len(s.items), config.limit or len(s.items)) for s in sets)
    registry = shared_registry(job.params["model"], Path(job.params["data_dir"]))
    try:
        # The directory the app's tabs configured: in-process models and the admin's endpoints' models.
        from models.directory import shared_directory

        models = shared_directory(registry, None, Path(job.params["data_dir"]) / "endpoints.yaml")
        return evaluate(models, config, progress=EvalProgress(control, total), stop=control.stop)
    except EvalCancelled as exc:
        raise JobCancelled(str(exc)) from None


register_runner("train", Runner(run_training, training_after_restart, training_final_report))
register_runner("evaluate", Runner(run_evaluation))
