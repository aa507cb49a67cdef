"""The scheduler of a server: training and evaluation jobs from all users in one line, run a few at a time.

States (jobs/status.py): queued -> running -> completed | failed | cancelled. A job that was running when the app
process died is found "running" by the next scheduler: followed if its work goes on elsewhere (a training job's process
still owns its folder), else marked by its runner (completed, failed, or interrupted, which Resume puts back in the
line with resume=True: training continues from its last checkpoint, an evaluation skips the items already on disk).
Jobs started from the command line (`python -m finetune train`) register in the same store; a scheduler adopts and
follows them, so they are listed, stopped and finished like the others.

Each kind has a small runner (jobs/runners.py, wired in by app.py), run in a worker thread: it returns (completed),
raises JobCancelled (cancelled) or anything else (failed, with the message). What it returns is kept in memory for the
tab that waits for it (output(); the last few only): everything that must survive a restart is in the job's files.

One app process per data dir: a new scheduler on the database treats every running row as left by a dead process.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import sqlite3
import threading
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from jobs.status import ACTIVE, FINAL, JobStatus
from jobs.store import Job, JobNotFound, JobStateError, JobStore, NotAllowed, QueueError, problem_of  # noqa: F401

POLL_S = 1.0  # how often the scheduler and the training follower look again when nothing wakes them
KEEP_OUTPUTS = 16  # runners' return values kept in memory


class JobCancelled(Exception):
    """Raised by a runner that stopped because it was asked to; the message says what was kept."""


class RunFailed(RuntimeError):
    """Raised by a runner whose work failed; the message is the job's error, `problem` its code and params when
    the work recorded them (a training job's status.json), as jobs.store.problem_of gives them."""

    def __init__(self, message: str, problem: dict | None = None):
        super().__init__(message)
        self.job_problem = problem


@dataclass(frozen=True)
class Control:
    """What a runner gets besides its job: the stop request and a way to report progress."""

    queue: "JobQueue"
    job_id: str
    stop: threading.Event

    def progress(self, done: int | None, total: int | None, eta_s: float | None = None, **info) -> None:
        self.queue.store.progress(self.job_id, self.queue.token, done, total, eta_s, info)


def _interrupted(job: Job) -> str:
    return "interrupted"


def _nothing_known(job: Job) -> dict:
    return {}


@dataclass(frozen=True)
class Runner:
    run: Callable[[Job, Control], object]
    # The state of a job found "running" with nobody of ours running it (the app restarted, or a CLI run):
    # "running" (its work goes on elsewhere: follow it), "completed", "failed", or "interrupted".
    after_restart: Callable[[Job], str] = _interrupted
    # What the job's own files say it reached, read when it ended while no app was watching: {"done", "total",
    # "error"} (any of them). Else the row keeps the last progress seen, and a finished job shows "completed, 1/45".
    final_report: Callable[[Job], dict] = _nothing_known


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
    """The scheduler: starts the oldest queued jobs while fewer than max_running run, with the roles policy on
    Cancel and Resume. Created once by app.py (AppContext.jobs), with the runners of each kind."""

    def __init__(self, data_dir: Path | str, max_running: int = 1, runners: dict[str, Runner] | None = None,
                 poll_s: float = POLL_S):
        self.store = JobStore(data_dir)
        self.data_dir, self.path = self.store.data_dir, self.store.path
        self.max_running = max(1, int(max_running))
        self.runners = dict(runners or {})
        self.poll_s = poll_s
        self.token = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._stops: dict[str, threading.Event] = {}
        self._outputs: OrderedDict[str, object] = OrderedDict()
        self._adopt(self.store.running())
        self._thread = threading.Thread(target=self._schedule_loop, name=f"job-queue:{self.path}", daemon=True)
        self._thread.start()

    # -- reading -------------------------------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """Every job: running, then queued in line order, then the rest newest first."""
        jobs = self._with_positions(self.store.all())
        order = {JobStatus.RUNNING: 0, JobStatus.QUEUED: 1}
        return sorted(jobs, key=lambda j: (order.get(j.state, 2), j.line if j.state in ACTIVE else -j.created_at))

    def get(self, job_id: str) -> Job:
        job = self.store.row(job_id)
        if job.state != JobStatus.QUEUED:
            return job
        placed = [j for j in self._with_positions(self.store.active()) if j.id == job_id]
        return placed[0] if placed else self.store.row(job_id)  # it left the line between the two reads

    def output(self, job_id: str):
        """What the job's runner returned, if it completed in this process not long ago; else None."""
        with self._lock:
            return self._outputs.get(job_id)

    def _with_positions(self, jobs: list[Job]) -> list[Job]:
        queued = [j for j in jobs if j.state == JobStatus.QUEUED]  # already in line order
        waits = estimate_waits([j.eta_s for j in jobs if j.state == JobStatus.RUNNING], [j.eta_s for j in queued],
                               self.max_running)
        placed = {j.id: dataclasses.replace(j, position=n, wait_s=w) for n, (j, w) in enumerate(zip(queued, waits), 1)}
        return [placed.get(j.id, j) for j in jobs]

    # -- what users do: the one Stop path and the one Resume path of the app's tabs and API -----------------------

    def submit(self, kind: str, owner: str, params: dict, label: str = "", job_id: str | None = None,
               resume: bool = False) -> Job:
        if kind not in self.runners:
            raise QueueError(f"unknown job kind {kind!r}; known: {', '.join(sorted(self.runners))}",
                             code="job_kind_unknown", kind=kind, known=", ".join(sorted(self.runners)))
        job_id = self.store.add(kind, owner, params, label, job_id, resume)
        self._wake.set()
        return self.get(job_id)

    def cancel(self, job_id: str, user, policy) -> Job:
        """A queued (or interrupted) job leaves the line; a running one is asked to stop and ends as cancelled."""
        self._check(job_id, user, policy, "cancel")
        self.store.request_stop(job_id)
        stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()
        self._wake.set()
        return self.get(job_id)

    def resume(self, job_id: str, user, policy) -> Job:
        """An interrupted, cancelled or failed job goes to the back of the line, to continue where it stopped."""
        self._check(job_id, user, policy, "resume")
        self.store.requeue(job_id)
        self._wake.set()
        return self.get(job_id)

    def _check(self, job_id: str, user, policy, action: str) -> Job:
        job = self.store.row(job_id)
        if not policy.can_manage_job(user, job.owner):
            raise NotAllowed(job.id, job.owner, user.name, action)
        return job

    # -- running -------------------------------------------------------------------------------------------------

    def _adopt(self, jobs: list[Job]) -> None:
        """Rows running with nobody here running them (left by a previous app process, or registered by a CLI run):
        follow the ones whose work goes on, mark the rest as their runner says."""
        for job in jobs:
            runner = self.runners.get(job.kind)
            outcome = runner.after_restart(job) if runner is not None else "interrupted"
            if outcome == "running":
                self._claim(job.id, fresh=False)
                if job.stop_requested:
                    self._stops[job.id].set()
                threading.Thread(target=self._work, args=(job,), name=f"job:{job.id}", daemon=True).start()
                continue
            report = runner.final_report(job) if runner is not None else {}
            self.store.finish(job.id, None, JobStatus(outcome), report.get("error", job.error), report,
                              report.get("problem", job.problem))

    def _schedule_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.clear()  # before looking: a submit from now on wakes the wait below
            try:
                self._adopt(self.store.running(cli_only=True))
                while not self._closed.is_set() and (job_id := self.store.claim_next(self.token, self.max_running)):
                    with self._lock:
                        self._stops[job_id] = threading.Event()
                    job = self.store.row(job_id)
                    threading.Thread(target=self._work, args=(job,), name=f"job:{job.id}", daemon=True).start()
            except sqlite3.Error:
                traceback.print_exc()  # a locked or full disk: try again on the next tick
            self._wake.wait(self.poll_s)

    def _claim(self, job_id: str, fresh: bool) -> None:
        with self._lock:
            self._stops[job_id] = threading.Event()
            self.store.claim(job_id, self.token, fresh)

    def _work(self, job: Job) -> None:
        stop = self._stops[job.id]
        state, error, problem = JobStatus.COMPLETED, None, None
        try:
            output = self.runners[job.kind].run(job, Control(self, job.id, stop))
            if output is not None:
                self._keep_output(job.id, output)
        except JobCancelled as exc:
            state, error = JobStatus.CANCELLED, str(exc) or None
        except Exception as exc:  # noqa: BLE001 - a failed job records why; the queue goes on with the next one
            if not stop.is_set():
                traceback.print_exc()
            state, error = ((JobStatus.CANCELLED, str(exc) or None) if stop.is_set()
                            else (JobStatus.FAILED, str(exc) or repr(exc)))
            # Its code and params beside the English text: the tabs say it in the page's language (ui/errors.py).
            problem = None if stop.is_set() else getattr(exc, "job_problem", None) or problem_of(exc)
        finally:
            self.store.finish(job.id, self.token, state, error, problem=problem)
            with self._lock:
                self._stops.pop(job.id, None)
            self._wake.set()

    def _keep_output(self, job_id: str, output) -> None:
        with self._lock:
            self._outputs[job_id] = output
            while len(self._outputs) > KEEP_OUTPUTS:
                self._outputs.popitem(last=False)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop starting jobs (running ones go on to their end); the database stays as it is."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout_s)


__all__ = ["ACTIVE", "FINAL", "Control", "Job", "JobCancelled", "JobNotFound", "JobQueue", "JobStateError",
           "JobStatus", "NotAllowed", "QueueError", "RunFailed", "Runner", "estimate_waits"]
