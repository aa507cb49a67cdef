"""The body of a training job, however it was started: `python -m jobs.worker <job_dir> [--resume]` (spawned by the
app, jobs/process.start_job) or in the foreground by `python -m finetune train`. It owns the job (its lock, see
jobs/process.py), turns SIGTERM into a stop request, and gives finetune.train a reporter that writes the job folder.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from jobs.files import JobFiles, is_writer, write_json_atomic
from jobs.process import OwnerLock, launched_by_torchrun
from safeio.cli import ExitStatus


class StopRequest:
    """Becomes requested on SIGTERM (Stop in the app, `python -m finetune stop`) or SIGINT (Ctrl-C): the trainer
    saves a checkpoint at the end of the current step and stops."""

    def __init__(self):
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True
        print(f"[job] signal {signum}: stopping after the current step (a checkpoint is saved)", flush=True)


class JobReporter:
    """finetune.train.Reporter for a job: everything lands in the job folder that the app, the CLI and the API read."""

    def __init__(self, files: JobFiles, stop: StopRequest):
        self.files, self.stop = files, stop

    def stage(self, stage: str, **details) -> None:
        self.files.update_status(state=stage, **details)

    def progress(self, **values) -> None:
        self.files.update_status(**values)

    def metric(self, row: dict) -> None:
        self.files.append_metric(row)

    def sample(self, row: dict) -> None:
        self.files.append_sample(row)

    def data_report(self, report: dict) -> None:
        if is_writer():
            write_json_atomic(self.files.data_report, report)

    def resumed_at(self, step: int) -> None:
        self.files.truncate_metrics(step)

    def should_stop(self) -> bool:
        return self.stop.requested

    def artifacts(self) -> list[Path]:
        return [self.files.metrics, self.files.data_report]


def problem_status(exc: Exception) -> dict:
    """A refused setting or file's first problem as status fields (its code and params), so the page says why the
    job failed in its own language (ui/finetune_tab.py); {} when the error has no code."""
    problems = getattr(exc, "problems", None) or [getattr(exc, "problem", None)]
    problem = problems[0] if problems else None
    if problem is None:
        return {}
    values = {"field": problem.field, "message": problem.message, "line": problem.line, **problem.params}
    plain = {k: v for k, v in values.items() if v is None or isinstance(v, (str, int, float, bool))}
    return {"error_code": f"problem.{problem.code}", "error_params": plain}


def run(job_dir: Path, resume: bool = False, lock=None) -> int:
    """Train the job in this process, owning it. Returns the exit code; the outcome is in status.json either way.
    `lock`: the owner lock (a context manager) when the caller already holds it, or a null context when another
    process holds it for this one (torchrun's launcher); else it is taken here (JobBusy if someone has it)."""
    files = JobFiles(Path(job_dir))
    # Under torchrun / accelerate launch rank 0 owns the job for all ranks (the others write nothing).
    owner = lock if lock is not None else (OwnerLock(files) if is_writer() else contextlib.nullcontext())
    with owner:
        stop = StopRequest()
        stop.install()
        return _run_owned(files, resume, stop)


def _run_owned(files: JobFiles, resume: bool, stop: StopRequest) -> int:
    from finetune.config import ConfigError, TrainConfig
    from evaluation.data import DataFileError
    from finetune.formats import DataError
    from finetune.train import train
    from jobs.train_eval import build_evaluator
    from models.preflight import PreflightError

    # The process Stop signals (see jobs/process.py): this one, or torchrun's launcher, which passes it to every rank.
    pid = os.getppid() if launched_by_torchrun() else os.getpid()
    files.update_status(state="loading", pid=pid, error=None, error_code=None, started_at=time.time())
    try:
        cfg = TrainConfig.load(files.config).validate()
        adapter_dir = Path(cfg.output_dir) if cfg.output_dir else files.default_adapter_dir(cfg)
        # Validation sets scored during training (jobs/train_eval.py): read and checked before the model loads.
        evaluator = build_evaluator(cfg)
        outcome = train(cfg, JobReporter(files, stop), files.checkpoints, adapter_dir, resume=resume,
                        evaluator=evaluator)
    except (ConfigError, DataError, DataFileError) as exc:  # `python -m finetune train` passes these statuses on
        print(f"[job] error: {exc}", flush=True)
        files.update_status(state="failed", error=str(exc), **problem_status(exc))  # the page says it from its code
        return ExitStatus.USAGE if isinstance(exc, ConfigError) else ExitStatus.INPUT_MALFORMED
    except PreflightError as exc:  # a model refused before loading: its message says what to do, no traceback
        print(f"[job] error: {exc}", flush=True)
        files.update_status(state="failed", error=str(exc), error_code=f"preflight.{exc.code}", error_params=exc.params)
        return ExitStatus.MODEL_UNUSABLE
    except BaseException as exc:  # noqa: BLE001 - a crashed job must say why in status.json, then exit
        traceback.print_exc()
        files.update_status(state="failed", error=f"{type(exc).__name__}: {exc}")
        return ExitStatus.INTERNAL
    if outcome:
        files.update_status(**outcome)
    return ExitStatus.OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the job dir")
    parser.add_argument("--lock-fd", type=int, default=None,
                        help="the job's owner lock, already taken by the process that started this one")
    args = parser.parse_args(argv)
    files = JobFiles(args.job_dir)
    if launched_by_torchrun():  # the app spawned torchrun, which holds the lock for its ranks (they lack the fd)
        lock = contextlib.nullcontext()
    elif args.lock_fd is not None:
        lock = OwnerLock(files, fd=args.lock_fd)
        lock.write_pid(os.getpid())
    else:
        lock = None
    return run(args.job_dir, resume=args.resume, lock=lock)


if __name__ == "__main__":
    sys.exit(main())
