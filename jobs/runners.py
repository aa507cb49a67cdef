"""The runners of each job kind, wired into the scheduler by app.py (`default_runners`): "train" starts (or follows)
a training job process (jobs/process.py, jobs/worker.py -> finetune.train) and follows its folder; "evaluate" calls
evaluation.run.evaluate in the worker thread, its cells written batch by batch so that a re-run resumes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from jobs.files import TERMINAL, JobFiles, list_jobs
from jobs.process import holder_pid, is_alive, read_job, start_job, stop_job
from jobs.scheduler import POLL_S, Control, JobCancelled, Runner, RunFailed
from jobs.status import JobStatus, from_stage
from jobs.store import CLI_OWNER, CLI_WORKER, Job, JobStore


def default_runners(registry_for: Callable[[str, Path], object] | None = None,
                    batch_call: Callable | None = None) -> dict[str, Runner]:
    """The app's runners. `registry_for(model, data_dir)`: the model registry evaluations run on (the app's
    shared one); default chat.registry.shared_registry. `batch_call`: how an evaluation or prediction batch is run
    (evaluation.run.evaluate's parameter): None here, ui/zerogpu.eval_batch_call on a ZeroGPU Space."""
    return {"train": Runner(run_training, training_after_restart, training_final_report),
            "evaluate": Runner(lambda job, control: run_evaluation(job, control, registry_for, batch_call)),
            "predict": Runner(lambda job, control: run_prediction(job, control, registry_for, batch_call))}


def register_job_folders(store: JobStore) -> list[str]:
    """Training job folders without a row (command-line runs from before they registered themselves): listed from
    now on, owned by CLI_OWNER (so the admin manages them), in the state their folder tells; a live one is adopted
    by the scheduler like any command-line run. Returns their ids."""
    known = {job.id for job in store.all()}
    found = []
    for files in list_jobs(store.data_dir):
        if files.job_id in known:
            continue
        status, alive = files.read_status(), is_alive(files)
        state = from_stage(status.get("state"), alive)
        store.register(files.job_id, "train", CLI_OWNER, {"job_dir": str(files.dir)},
                       label=status.get("adapter_name") or files.job_id,
                       state=JobStatus.INTERRUPTED if state == JobStatus.QUEUED else state,
                       worker=f"{CLI_WORKER}{holder_pid(files)}" if alive else None, error=status.get("error"),
                       problem=status_problem(status))
        found.append(files.job_id)
    return found


# ---------------------------------------------------------------------------------------------------------------
# Training: the job process, created (with its directory and config) when it was submitted


def run_training(job: Job, control: Control) -> None:
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
        raise RunFailed(status.get("error") or f"training job {files.job_id} failed; see its train.log",
                        status_problem(status))
    if status["state"] == "stopped":
        raise JobCancelled(f"stopped at step {status.get('step', 0)}; the last checkpoint is kept for Resume")


def follow_training(files, control: Control) -> dict:
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
    """A row found running with nobody here following it: its process still owns the job (a CLI run, or a job
    that outlived an app restart) -> follow it; else what its folder says. A failure the job recorded itself (bad
    data, out of memory) stays a failure with its error; a job cut off without a word (killed with the app) is
    interrupted, and Resume continues it from its last checkpoint."""
    files = JobFiles(Path(job.params["job_dir"]))
    status = from_stage(files.read_status().get("state"), is_alive(files))
    return "interrupted" if status == JobStatus.QUEUED else str(status)


def training_final_report(job: Job) -> dict:
    """The step reached and the error, from the job's status.json (the job process writes it to its end)."""
    status = JobFiles(Path(job.params["job_dir"])).read_status()
    report = {key: status[src] for key, src in (("done", "step"), ("total", "total_steps"))
              if status.get(src) is not None}
    if status.get("state") == "failed" and status.get("error"):
        report["error"] = str(status["error"])
        if status_problem(status):
            report["problem"] = status_problem(status)
    return report


def status_problem(status: dict) -> dict | None:
    """The code and params a failed training job wrote into its status.json (jobs/worker.py), as the queue keeps
    them (jobs.store.problem_of)."""
    code = status.get("error_code")
    return {"code": code, "params": dict(status.get("error_params") or {})} if code else None


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

    def __init__(self, control: Control):
        self.control = control
        self.cell, self.cell_total, self.offset = None, 0, 0

    def __call__(self, p) -> None:
        if (p.model, p.dataset) != self.cell:
            self.offset += self.cell_total
            self.cell = (p.model, p.dataset)
        self.cell_total = p.total
        done = self.offset + p.done
        eta = (p.run_total - done) / p.items_per_s if p.items_per_s else None
        self.control.progress(done, p.run_total, eta, model=p.model, set=p.dataset, items_per_s=p.items_per_s)


def job_models(job: Job, registry_for: Callable | None):
    """The models an evaluation or prediction job answers with: the directory the app's tabs configured, the
    in-process models and the admin's endpoints' models, by the names the tab listed."""
    from models.directory import shared_directory

    if registry_for is None:
        from chat.registry import shared_registry as registry_for
    registry = registry_for(job.params["model"], Path(job.params["data_dir"]))
    return shared_directory(registry, None, Path(job.params["data_dir"]) / "endpoints.yaml")


def run_evaluation(job: Job, control: Control, registry_for: Callable | None = None,
                   batch_call: Callable | None = None) -> list:
    from evaluation.run import EvalCancelled, evaluate

    config = eval_config_from_dict(job.params["config"])
    models = job_models(job, registry_for)
    try:
        return evaluate(models, config, progress=EvalProgress(control), stop=control.stop,
                        batch_call=batch_call)
    except EvalCancelled as exc:
        raise JobCancelled(str(exc)) from None


# ---------------------------------------------------------------------------------------------------------------
# Prediction of a test set: evaluation.predict.predict in the worker thread; answers are logged batch by batch, a
# re-run resumes


def predict_config_from_dict(values: dict):
    from evaluation.predict import PredictConfig
    from evaluation.prompts import PromptConfig

    values = {**values, "prompt": PromptConfig(**values["prompt"])}
    for name in ("models", "postprocess"):
        values[name] = tuple(values[name])
    return PredictConfig(**values)


def run_prediction(job: Job, control: Control, registry_for: Callable | None = None,
                   batch_call: Callable | None = None) -> list:
    from evaluation.predict import predict
    from evaluation.run import EvalCancelled

    config = predict_config_from_dict(job.params["config"])
    models = job_models(job, registry_for)
    try:
        return predict(models, config, progress=EvalProgress(control), stop=control.stop,
                       batch_call=batch_call)
    except EvalCancelled as exc:
        raise JobCancelled(str(exc)) from None
