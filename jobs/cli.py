"""The job commands of `python -m finetune` (train, jobs, stop, compare): what a terminal does with the job system.

finetune/__main__.py, the entry point, parses the flags and turns them into a TrainConfig (finetune's part); the
bodies here register the run in the data dir's store (listed in the app's Jobs tab), own it with its lock (a second
`train --resume` of a running job is refused), follow it, stop it, and read jobs through jobs/progress.py. The
commands, flags, output and exit statuses are those of `python -m finetune` (README).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from pathlib import Path

import safeio
from safeio import ExitStatus
from finetune.compare import load_run, png_chart, table, task_metrics, text_chart
from finetune.config import ConfigError, TrainConfig
from finetune.formats import DataError
from jobs.files import (JOB_ID_RE, TERMINAL, JobFiles, check_job_id, create_job, is_writer, job_files, jobs_root,
                        list_jobs)
from jobs.process import OwnerLock, is_alive, read_job, start_job, stop_job
from jobs.progress import compare_run, read_log_since, read_progress
from jobs.status import JobStatus, from_stage
from jobs.store import CLI_WORKER, JobNotFound, JobStateError, JobStore
from jobs.worker import run as run_job


def cmd_train(args, cfg: TrainConfig | None) -> int:
    """`train`: a new job from `cfg` (the flags and --config, as finetune/__main__.py reads them), or with --resume
    the job's own config, trained in this process as a job of the data dir's store."""
    data_dir = Path(args.data_dir)
    if args.resume:
        files = job_files(data_dir, args.resume)
        progress = read_progress(files, curves=False, log_lines=0)
        if progress.stage == "completed":
            raise ConfigError("--resume", f"{files.dir}: already completed ({progress.adapter_dir})")  # usage: 2
        # One owner at a time: JobBusy (naming the process) if the app or another terminal trains it now.
        return run_registered(files, data_dir, args.owner, OwnerLock(files).acquire(), resume=True)
    if cfg.eval_sets:  # every set read and checked now: a bad row or a wrong task is refused before any job exists
        from jobs.train_eval import build_evaluator  # evaluation's readers and models: only when there are sets

        print(f"validation sets: {build_evaluator(cfg.validate()).describe()}", flush=True)
    rank = int(os.environ.get("RANK", "0"))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # accelerate launch / torchrun: every rank runs this; they agree on one job dir named from the config and
        # their launcher's pid (the ranks' common parent), so the same command run again gets a fresh job.
        digest = hashlib.sha1(cfg.to_yaml().encode()).hexdigest()[:10]
        job_id = check_job_id(args.job_id) if args.job_id else f"dist-{digest}-{os.getppid()}"
        files = JobFiles(jobs_root(data_dir) / job_id)
        if rank == 0 and not files.config.exists():
            create_job(cfg, data_dir, job_id=job_id)
        _wait_for(files.config)
    elif cfg.processes > 1:  # data parallel from the command line: the same launcher (torchrun) as the app's
        return _launch_and_follow(create_job(cfg, data_dir, job_id=args.job_id), data_dir, args.owner)
    else:
        files = create_job(cfg, data_dir, job_id=args.job_id)
    print(f"job {files.job_id}: {files.dir}", flush=True)
    lock = OwnerLock(files).acquire() if is_writer() else None  # rank 0 owns the job for all ranks
    return run_registered(files, data_dir, args.owner, lock, resume=False)


def run_registered(files, data_dir: Path, owner: str, lock, resume: bool) -> int:
    """Train in the foreground as a job of the store, like the app's: listed in the app's Jobs tab (which follows
    it, and whose Stop reaches it), and finished in the store when it ends here."""
    store, worker = (JobStore(data_dir) if is_writer() else None), f"{CLI_WORKER}{os.getpid()}"
    if store is not None:
        store.register(files.job_id, "train", owner, {"job_dir": str(files.dir)},
                       label=files.read_status().get("adapter_name") or files.job_id, worker=worker, resume=resume)
    try:
        with tee_to(files.log):
            code = run_job(files.dir, resume=resume, lock=lock)
    finally:
        status = files.read_status()
        if store is not None:  # the app, if it followed the run, has finished the row already: then this is a no-op
            state = from_stage(status.get("state"), alive=False)
            store.finish(files.job_id, worker, JobStatus.INTERRUPTED if state == JobStatus.QUEUED else state,
                         status.get("error") if state == JobStatus.FAILED else None,
                         {"done": status.get("step"), "total": status.get("total_steps")})
            store.close()
    if is_writer():  # the other ranks would print rank 0's status half-way through its save
        early = " (stopped early: no improvement)" if status.get("stopped_early") else ""
        print(f"{status.get('state')}{early}: {status.get('adapter_dir') or status.get('error') or ''}")
    return finished_status(status.get("state"), code)


def finished_status(state: str | None, code: int) -> int:
    """A run's exit status (safeio.ExitStatus): from its final state (completed 0; stopped 130, interrupted and
    resumable), else the job process's own (jobs/worker.py: a bad data file 3, a model that cannot load 6, ...),
    else 1 (a failed run)."""
    if state == JobStatus.COMPLETED:
        return ExitStatus.OK
    if state == "stopped":
        return ExitStatus.INTERRUPTED
    return code or ExitStatus.INTERNAL


def _launch_and_follow(files, data_dir: Path, owner: str) -> int:
    """Start the job as the app does (its own process group, torchrun for several processes), registered in the
    store like a foreground run, and show its log until it ends; Ctrl-C stops it (a checkpoint is saved)."""
    print(f"job {files.job_id}: {files.dir}", flush=True)
    store, worker = JobStore(data_dir), f"{CLI_WORKER}{os.getpid()}"
    store.register(files.job_id, "train", owner, {"job_dir": str(files.dir)},
                   label=files.read_status().get("adapter_name") or files.job_id, worker=worker)
    start_job(files)
    shown = 0
    try:
        while True:
            state = read_job(files).get("state")
            # What the log gained (never the whole log again); once the job has ended, to its very last byte.
            text, shown = read_log_since(files, shown, last=state in TERMINAL)
            print(text, end="", flush=True)
            if state in TERMINAL:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop_job(files, wait=True)
    status = read_job(files)
    store.finish(files.job_id, worker, from_stage(status.get("state"), alive=False), status.get("error"),
                 {"done": status.get("step"), "total": status.get("total_steps")})
    print(f"{status.get('state')}: {status.get('adapter_dir') or status.get('error') or ''}")
    return finished_status(status.get("state"), ExitStatus.OK)


@contextlib.contextmanager
def tee_to(log: Path):
    """The terminal shows the run and train.log keeps it, as for jobs started from the app (which the tab reads)."""

    class Tee:
        def __init__(self, stream, file):
            self.stream, self.file = stream, file

        def write(self, text):
            self.file.write(text)
            self.file.flush()
            return self.stream.write(text)

        def __getattr__(self, name):
            return getattr(self.stream, name)

    with log.open("a", encoding="utf-8") as f:
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Tee(sys.stdout, f), Tee(sys.stderr, f)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old


def _wait_for(path: Path, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while not path.exists():
        if time.time() > deadline:
            raise DataError(f"{path}: rank 0 did not create the job directory")
        time.sleep(0.5)


def cmd_jobs(args) -> int:
    """Every training job of the data dir with its state (jobs/status.py), stage, progress and owner, however it
    was started. Liveness comes from the job's owner lock, so a run in another terminal is never called failed."""
    data_dir = Path(args.data_dir)
    store = JobStore(data_dir) if (data_dir / "queue.sqlite").exists() else None
    for files in list_jobs(data_dir):
        p = read_progress(files, curves=False, log_lines=0)
        try:
            owner = store.row(files.job_id).owner if store is not None else "-"
        except JobNotFound:
            owner = "-"
        print(f"{files.job_id}\t{p.status}\t{p.stage}\tstep {p.step}/{'?' if p.total_steps is None else p.total_steps}"
              f"\t{owner}\t{p.adapter_dir or p.error or ''}")
    return ExitStatus.OK


def cmd_compare(args) -> int:
    """`compare RUN ...`: a job directory or a job id is read as the job system reads any job (jobs/progress.py); an
    adapter directory (its train_config.yaml, selection.json and metrics) by finetune.compare."""
    runs = []
    for run in args.runs:
        path = Path(run)
        if not path.is_dir() and JOB_ID_RE.match(run):
            path = jobs_root(Path(args.data_dir)) / run
        try:
            runs.append(compare_run(JobFiles(path)) if JobFiles(path).config.is_file() else load_run(path))
        except FileNotFoundError as exc:
            raise DataError(str(exc)) from None
    metrics = task_metrics(runs)
    if not metrics:
        raise DataError("none of these runs logged a task metric or eval_loss")
    metric = args.metric or metrics[0]
    rows = table(runs, metric)
    print("\t".join(rows[0]))
    for row in rows:
        print(safeio.printable("\t".join("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
                                         for v in row.values())))
    if args.chart:
        print(f"chart: {png_chart(runs, metric, Path(args.chart))}")
    else:
        print(safeio.printable(text_chart(runs, metric)))
    return ExitStatus.OK


def cmd_stop(args) -> int:
    """The Stop of the app's tabs and API, from a terminal: a queued job leaves the line, a running one (started by
    the app or by `finetune train` anywhere) saves a checkpoint at the end of its step and stops. Exit 0 once the job
    no longer runs; 7 (busy) if it still does (it did not stop within the grace time)."""
    data_dir = Path(args.data_dir)
    files = job_files(data_dir, args.job_id)  # a plain name of an existing job: nothing is written else
    store = JobStore(data_dir) if (data_dir / "queue.sqlite").exists() else None
    try:
        if store is not None:
            store.request_stop(files.job_id)
    except JobStateError as exc:
        print(f"{args.job_id}: nothing to stop ({exc})")
        return ExitStatus.OK
    except JobNotFound:
        pass  # a folder without a row: its process (if any) is still signalled below
    status = stop_job(files, wait=True)
    state = from_stage(status.get("state"), is_alive(files))
    if store is not None and state != JobStatus.RUNNING:
        # A run nobody follows any more (its terminal was closed, or it was killed after the grace time).
        store.finish(files.job_id, None, JobStatus.INTERRUPTED if state == JobStatus.QUEUED else state,
                     status.get("error"), {"done": status.get("step"), "total": status.get("total_steps")})
    print(f"{args.job_id}: {state} ({status.get('state')}, step {status.get('step', 0)})")
    return ExitStatus.OK if state != JobStatus.RUNNING else ExitStatus.BUSY  # it did not stop in time
