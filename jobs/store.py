"""The queue database of a data dir: one row per job, whoever started it (the app's tabs, its API, the command line).

    <data_dir>/queue.sqlite   kind, owner, label, params, status (jobs/status.py), place in line, times, progress,
                              ETA, error, resume / stop flags, and the worker that runs it

With the job folders (jobs/files.py) this is the store: every change of a job's state is one of the methods below.
The scheduler (jobs/scheduler.py) decides *when*; a CLI run (`python -m finetune train`) registers itself here so the
app lists it like any other. `worker` names who runs a row: an app scheduler's token, or "cli:<pid>" for a command
line run; a worker only ever finishes its own rows, so a stale one never overwrites a newer run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from jobs.status import ACTIVE, FINAL, RESUMABLE, JobStatus

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
    worker TEXT,                        -- who runs it: a scheduler's token, or cli:<pid>
    problem TEXT                        -- the error as {"code", "params"} (JSON), so a page says it in its language
)
"""
# Columns added after the first release, with their definition: a database an older version created gets them when
# it is opened (ALTER TABLE ... ADD COLUMN keeps every row; the new column is NULL in them).
ADDED_COLUMNS = {"problem": "TEXT"}
CLI_WORKER = "cli:"  # prefix of the worker of a row a command-line run registered
# Owner of a command-line run that names none: no user can have this name (hosting/users.py NAME_RE), so only the
# admin manages such a job in the app.
CLI_OWNER = "(cli)"


class QueueError(Exception):
    """`code` and `params`: the sentence of safeio.problems.MESSAGES the page says it with, in its language."""

    def __init__(self, message: str = "", code: str = "", **params):
        super().__init__(message)
        self.code, self.params = code, params


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


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    owner: str
    label: str
    params: dict
    state: JobStatus
    line: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    done: int | None = None
    total: int | None = None
    eta_s: float | None = None
    info: dict = field(default_factory=dict)
    error: str | None = None  # English, for the command line and logs
    problem: dict | None = None  # the error's {"code": "problem.<code>" | "preflight.<code>", "params": {...}}
    resume: bool = False
    stop_requested: bool = False
    position: int | None = None  # queued jobs: 1 = next to start
    wait_s: float | None = None  # queued jobs: estimated time until it starts; None = unknown
    worker: str | None = None

    @property
    def from_cli(self) -> bool:
        return (self.worker or "").startswith(CLI_WORKER)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        values = {k: row[k] for k in row.keys()}
        values.update(params=json.loads(values["params"]), info=json.loads(values["info"]),
                      resume=bool(values["resume"]), stop_requested=bool(values["stop_requested"]),
                      state=JobStatus(values["state"]), problem=json.loads(values.get("problem") or "null"))
        return cls(**values)


def _in(states) -> str:
    return f"({', '.join(repr(str(s)) for s in states)})"


class JobStore:
    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "queue.sqlite"
        self._lock = threading.RLock()
        # One connection shared by this process's threads under self._lock; autocommit, explicit transactions.
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across an app crash, cheap per update
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a database created by an older version lacks (see ADDED_COLUMNS)."""
        with self._lock:
            have = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for name, kind in ADDED_COLUMNS.items():
                if name in have:
                    continue
                try:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:  # another process opening the same database added it first
                    if "duplicate column" not in str(exc):
                        raise

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading -------------------------------------------------------------------------------------------------

    def all(self) -> list[Job]:
        with self._lock:
            return [Job.from_row(r) for r in self._db.execute("SELECT * FROM jobs ORDER BY line").fetchall()]

    def active(self) -> list[Job]:
        """Running and queued rows in line order: all that places in line and waits depend on."""
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM jobs WHERE state IN {_in(ACTIVE)} ORDER BY line").fetchall()
        return [Job.from_row(r) for r in rows]

    def row(self, job_id: str) -> Job:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return Job.from_row(row)

    def running(self, cli_only: bool = False) -> list[Job]:
        query = "SELECT * FROM jobs WHERE state = 'running'" + (" AND worker LIKE 'cli:%'" if cli_only else "")
        with self._lock:
            return [Job.from_row(r) for r in self._db.execute(query).fetchall()]

    # -- what users and schedulers do ----------------------------------------------------------------------------

    def add(self, kind: str, owner: str, params: dict, label: str = "", job_id: str | None = None,
            resume: bool = False) -> str:
        job_id = job_id or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        try:
            with self.tx() as db:
                db.execute("INSERT INTO jobs (id, kind, owner, label, params, state, line, created_at, resume) "
                           "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                           (job_id, kind, owner, label or job_id, json.dumps(params, ensure_ascii=False),
                            self._next_line(db), time.time(), int(resume)))
        except sqlite3.IntegrityError:
            raise QueueError(f"a job {job_id!r} is already in the queue", code="job_exists", job=job_id) from None
        return job_id

    def request_stop(self, job_id: str) -> JobStatus:
        """A queued (or interrupted) job leaves the line at once; a running one is flagged: its runner stops it.
        Returns the state it was in; JobStateError for a job already over."""
        with self.tx() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            state = JobStatus(row["state"])
            if state in (JobStatus.QUEUED, JobStatus.INTERRUPTED):
                db.execute("UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ?", (time.time(), job_id))
            elif state == JobStatus.RUNNING:
                db.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))
            else:
                raise JobStateError(job_id, state, "cancel")
        return state

    def requeue(self, job_id: str) -> None:
        """An interrupted, cancelled or failed job goes to the back of the line, to continue where it stopped."""
        with self.tx() as db:
            done = db.execute("UPDATE jobs SET state = 'queued', resume = 1, line = ?, error = NULL, problem = NULL, "
                              "finished_at = NULL, stop_requested = 0, worker = NULL WHERE id = ? AND state IN "
                              f"{_in(RESUMABLE)}", (self._next_line(db), job_id))
            if done.rowcount == 0:
                raise JobStateError(job_id, self.row(job_id).state, "resume")

    def claim_next(self, worker: str, max_running: int) -> str | None:
        """The oldest queued job, now running under `worker`, if fewer than max_running run (CLI runs count:
        they use the same GPU)."""
        with self.tx() as db:
            running = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'running'").fetchone()[0]
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY line LIMIT 1").fetchone()
            if running >= max_running or row is None:
                return None
            self.claim(row["id"], worker, fresh=True)
        return row["id"]

    def claim(self, job_id: str, worker: str, fresh: bool) -> None:
        # A job followed after a restart keeps its start time and any stop asked for before.
        sets = "started_at = ?, stop_requested = 0" if fresh else "started_at = COALESCE(started_at, ?)"
        with self._lock:
            self._db.execute(f"UPDATE jobs SET state = 'running', {sets}, worker = ? WHERE id = ?",
                             (time.time(), worker, job_id))

    def register(self, job_id: str, kind: str, owner: str, params: dict, label: str = "",
                 state: JobStatus = JobStatus.RUNNING, worker: str | None = None, resume: bool = False,
                 error: str | None = None, problem: dict | None = None) -> None:
        """A run that started outside any scheduler (the command line), or a job folder found without a row: its
        row, new or back from an earlier run, is in `state` under `worker` from now on (the owner of an existing
        row stays)."""
        now = time.time()
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO jobs (id, kind, owner, label, params, state, line, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, kind, owner, label or job_id, json.dumps(params, ensure_ascii=False), str(state),
                        self._next_line(db), now))
            db.execute("UPDATE jobs SET state = ?, worker = ?, started_at = ?, finished_at = ?, error = ?, "
                       "problem = ?, stop_requested = 0, resume = ? WHERE id = ?",
                       (str(state), worker, now if state == JobStatus.RUNNING else None,
                        now if state in FINAL else None, error, _json_or_null(problem), int(resume), job_id))

    def progress(self, job_id: str, worker: str, done, total, eta_s, info: dict) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET done = ?, total = ?, eta_s = ?, info = ? WHERE id = ? AND worker = ?",
                             (done, total, eta_s, json.dumps(info, ensure_ascii=False), job_id, worker))

    def finish(self, job_id: str, worker: str | None, state: JobStatus, error: str | None = None,
               report: dict | None = None, problem: dict | None = None) -> None:
        """The end of a run (or of a row found running when nobody runs it any more: worker None). `report`: what
        the job's own files say it reached ({"done", "total"}); else the row keeps the last progress seen. `error`
        is the English sentence; `problem` its code and params (problem_of), which the tabs say it from."""
        report, final = report or {}, state in FINAL
        mine = "AND worker = ?" if worker is not None else ""
        with self._lock:
            self._db.execute("UPDATE jobs SET state = ?, error = ?, problem = ?, finished_at = ?, "
                             "done = COALESCE(?, done), "
                             "total = COALESCE(?, total), eta_s = CASE WHEN ? THEN 0.0 ELSE eta_s END, "
                             f"worker = CASE WHEN ? THEN NULL ELSE worker END WHERE id = ? AND state = 'running' {mine}",
                             (str(state), error, _json_or_null(problem), time.time() if final else None,
                              report.get("done"),
                              report.get("total"), final, worker is None, job_id, *([worker] if worker else [])))

    @staticmethod
    def _next_line(db: sqlite3.Connection) -> int:
        return db.execute("SELECT COALESCE(MAX(line), 0) + 1 FROM jobs").fetchone()[0]


def _json_or_null(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _plain(params: dict) -> dict:
    """Params that survive JSON as they are (a sentence formats them); anything else as its text."""
    return {str(k): v if v is None or isinstance(v, (str, int, float, bool)) else str(v) for k, v in params.items()}


def problem_of(exc: BaseException) -> dict | None:
    """What a failed job keeps of its exception besides the English text: {"code", "params"}, where code is the
    ui/strings.py key of its sentence ("problem.<code>" for safeio.problems.MESSAGES, "preflight.<code>" for a
    refused model); None when the exception has no code (the page then shows the English text as it is)."""
    from safeio.problems import MESSAGES

    if type(exc).__name__ == "PreflightError" and getattr(exc, "code", ""):
        return {"code": f"preflight.{exc.code}", "params": _plain(getattr(exc, "params", {}) or {})}
    problems = getattr(exc, "problems", None) or [getattr(exc, "problem", None)]
    problem = problems[0] if problems else None
    if problem is not None and getattr(problem, "code", "") in MESSAGES:  # a file's or a setting's problem
        values = {"field": problem.field, "message": problem.message, "line": problem.line, **problem.params}
        return {"code": f"problem.{problem.code}", "params": _plain(values)}
    code = getattr(exc, "code", "")
    if isinstance(code, str) and code in MESSAGES:
        return {"code": f"problem.{code}", "params": _plain(getattr(exc, "params", None) or {})}
    return None
