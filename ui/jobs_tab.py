"""The Jobs tab: every user's training and evaluation jobs in the one shared queue (jobs/: the app's scheduler,
AppContext.jobs), including training runs started from the command line, with place in line, progress and ETA; Cancel and Resume for one's own jobs (the admin: any job); the selected job's log or error.
Also the helpers the Fine-tune and Evaluate tabs use to submit to the queue and to show where a job stands.
"""

from __future__ import annotations

import functools
import inspect
import time
from pathlib import Path
from typing import Callable

import gradio as gr
import pandas as pd

from jobs.files import JobFiles
from jobs.progress import JobProgress, compare_run, read_progress
from jobs.scheduler import Job, JobNotFound, JobQueue, JobStateError, JobStatus, NotAllowed, QueueError
from safeio.problems import render
from ui.access import current_user, require
from ui.context import AppContext
from ui.errors import job_error_text
from ui.strings import t


def with_ctx(fn, ctx: AppContext):
    """fn with ctx bound. Unlike functools.partial this keeps fn's signature and type hints, by which gradio finds
    the gr.Request (and gr.Progress) parameters it fills in."""

    @functools.wraps(fn)
    def bound(*args, **kwargs):
        return fn(*args, **kwargs, ctx=ctx)

    signature = inspect.signature(fn)
    bound.__signature__ = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "ctx"])
    return bound


def job_queue(ctx: AppContext) -> JobQueue:
    """The app's one scheduler (built with the context by app.py, ui.context.with_services)."""
    if ctx.jobs is None:
        raise RuntimeError("this AppContext has no job scheduler: build it with ui.context.with_services")
    return ctx.jobs


def find_job(ctx: AppContext, job_id: str | None) -> Job | None:
    try:
        return job_queue(ctx).get(job_id) if job_id else None
    except JobNotFound:
        return None


def queue_error(exc: QueueError, lang: str) -> gr.Error:
    """A queue exception as a message in the user's language, naming the job (and its owner)."""
    if isinstance(exc, NotAllowed):
        text = t("jobs.not_allowed", lang).format(user=exc.user, job=exc.job_id, owner=exc.owner,
                                                  action=t(f"jobs.action.{exc.action}", lang))
    elif isinstance(exc, JobStateError):
        text = t(f"jobs.cannot_{exc.action}", lang).format(job=exc.job_id, state=t(f"jobs.state.{exc.state}", lang))
    elif isinstance(exc, JobNotFound):
        text = t("jobs.not_found", lang).format(job=exc.job_id)
    else:  # a coded queue refusal (safeio.problems.MESSAGES); one without a code is the backend's sentence
        text = render(exc.code, lang, {"message": str(exc), **exc.params}) if exc.code else None
        text = text or (str(exc) if lang == "en" else t("error.backend_detail", lang).format(detail=exc))
    return gr.Error(text, print_exception=False)


def duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return t("jobs.unknown", lang)
    return time.strftime("%H:%M:%S", time.gmtime(max(0.0, seconds)))


def state_text(job: Job, lang: str) -> str:
    text = t(f"jobs.state.{job.state}", lang)
    return text + t("jobs.stopping", lang) if job.state == JobStatus.RUNNING and job.stop_requested else text


def eta_text(job: Job, lang: str) -> str:
    if job.state == JobStatus.QUEUED:
        return t("jobs.starts_in", lang).format(eta=duration(job.wait_s, lang))
    if job.state == JobStatus.RUNNING:
        return duration(job.eta_s, lang)
    return ""


def waiting_text(job: Job, lang: str) -> str:
    """One line for the tab that submitted the job: queued (place, wait) or interrupted (what Resume does)."""
    if job.state == JobStatus.QUEUED:
        return t("jobs.queued_status", lang).format(job=job.id, position=job.position, wait=duration(job.wait_s, lang))
    if job.state == JobStatus.INTERRUPTED:
        return t("jobs.interrupted_status", lang).format(job=job.id)
    return ""


def jobs_frame(jobs: list[Job], lang: str) -> pd.DataFrame:
    rows = [[j.id, t(f"jobs.kind.{j.kind}", lang), j.label, j.owner, state_text(j, lang), j.position or "",
             f"{j.done or 0}/{j.total}" if j.total else "", eta_text(j, lang),
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created_at))] for j in jobs]
    return pd.DataFrame(rows, columns=t("jobs.columns", lang).split("|"))


def viewer_level(job: Job | None, request: gr.Request | None, ctx: AppContext) -> str:
    """How much of a job this request's user may see: "admin" (everything), "owner" (everything but the server's
    paths) or "other" (the queue line: owner, state, place). A job outside the queue (started on the command line)
    has no known owner: the admin's only."""
    user = current_user(request, ctx)
    if ctx.policy.can(user, "manage_all_jobs"):
        return "admin"
    return "owner" if job is not None and job.owner == user.name else "other"


def path_redactor(data_dir: Path, data_file: str | None = None) -> Callable[[str], str]:
    """For a job's owner who is not the admin: the uploaded data file (JobProgress.data_file) by its name, and the
    data dir's own path as `<data>`, in any text shown (status, data report, log, error). The server's layout is none
    of their business."""
    pairs: list[tuple[str, str]] = [(data_file, Path(data_file).name)] if data_file else []
    for root in dict.fromkeys((str(Path(data_dir).resolve()), str(data_dir))):
        pairs.append((root, "<data>"))

    def redact(text):
        if not isinstance(text, str):
            return text
        for old, new in pairs:
            text = text.replace(old, new)
        return text

    return redact


def job_detail(job: Job | None, lang: str, level: str = "admin", data_dir: Path | None = None,
               progress: JobProgress | None = None) -> tuple[str, str]:
    """The selected job's summary (with its error) and its log tail (training: `progress`, read by do_detail) or
    progress note (evaluation). `level` (viewer_level): "other" gets the summary line only, "owner" gets it all with
    paths redacted."""
    if job is None:
        return t("jobs.none_selected", lang), ""
    when = {k: time.strftime("%H:%M:%S", time.localtime(v)) if v else "–"
            for k, v in (("created", job.created_at), ("started", job.started_at), ("finished", job.finished_at))}
    text = t("jobs.detail", lang).format(job=job.id, kind=t(f"jobs.kind.{job.kind}", lang), owner=job.owner,
                                         state=state_text(job, lang), **when)
    note = waiting_text(job, lang)
    text += f"\n\n{note}" if note else ""
    if level == "other":  # someone else's job: its line in the queue, not its log, error or data
        return text + "\n\n" + t("jobs.not_yours", lang), ""
    data_file = progress.data_file if progress is not None else None
    redact = path_redactor(data_dir, data_file) if level != "admin" and data_dir is not None else (lambda x: x)
    if job.error:  # a failure's error (said from its code in the page's language), or what a cancelled job kept
        error = job_error_text(job.error, job.problem, lang) if job.state == "failed" else job.error
        text += "\n\n" + (t("jobs.error", lang).format(error=error) if job.state == "failed" else error)
    if progress is not None:
        return redact(text), redact(progress.log)
    info = ", ".join(f"{k}: {round(v, 2) if isinstance(v, float) else v}" for k, v in job.info.items() if v is not None)
    return redact(text), redact(info)


def do_list(selected, ctx: AppContext):
    jobs = job_queue(ctx).jobs()
    ids = [j.id for j in jobs]
    value = selected if selected in ids else (ids[0] if ids else None)
    return jobs_frame(jobs, ctx.lang), gr.update(choices=ids, value=value)


def training_files(job: Job | None) -> JobFiles | None:
    """The folder of a training job (the path the store recorded when the job was created), else None."""
    if job is None or job.kind != "train" or not job.params.get("job_dir"):
        return None
    return JobFiles(Path(job.params["job_dir"]))


def do_detail(job_id, request: gr.Request, ctx: AppContext):
    job = find_job(ctx, job_id)
    level, files = viewer_level(job, request, ctx), training_files(job)
    # Someone else's job: its line only, so its folder is not read at all.
    progress = read_progress(files, job=job, curves=False) if files is not None and level != "other" else None
    return job_detail(job, ctx.lang, level, ctx.data_dir, progress)


def do_tick(job_id, request: gr.Request, ctx: AppContext):
    """The timer's refresh: the table and the selected job's detail, as this user may see it."""
    return (do_list(job_id, ctx)[0], *do_detail(job_id, request, ctx))


def do_cancel(job_id, request: gr.Request, ctx: AppContext):
    if not job_id:
        raise gr.Error(t("jobs.need_job", ctx.lang))
    try:
        job_queue(ctx).cancel(job_id, current_user(request, ctx), ctx.policy)
    except QueueError as exc:
        raise queue_error(exc, ctx.lang) from None
    return (*do_list(job_id, ctx), *do_detail(job_id, request, ctx))


def do_resume(job_id, request: gr.Request, ctx: AppContext):
    job = find_job(ctx, job_id)
    if job is None:
        raise gr.Error(t("jobs.need_job", ctx.lang) if not job_id else t("jobs.not_found", ctx.lang).format(job=job_id))
    user = require(request, ctx, "train" if job.kind == "train" else "evaluate")
    try:
        job_queue(ctx).resume(job_id, user, ctx.policy)
    except QueueError as exc:
        raise queue_error(exc, ctx.lang) from None
    return (*do_list(job_id, ctx), *do_detail(job_id, request, ctx))


COMPARABLE = (JobStatus.COMPLETED, JobStatus.CANCELLED)  # finished runs; a cancelled one kept its metrics so far


def comparable_jobs(request: gr.Request | None, ctx: AppContext) -> list[Job]:
    """Finished training runs this request's user may see in full (their own; the admin: all)."""
    return [j for j in job_queue(ctx).jobs() if j.kind == "train" and j.state in COMPARABLE
            and j.params.get("job_dir") and viewer_level(j, request, ctx) != "other"]


def do_compare_choices(selected, request: gr.Request, ctx: AppContext):
    ids = [j.id for j in comparable_jobs(request, ctx)]
    return gr.update(choices=ids, value=[i for i in selected or [] if i in ids])


def compare_runs(job_ids, request: gr.Request | None, ctx: AppContext) -> list[dict]:
    """The picked runs as finetune.compare reads them, each checked: a finished training job the user may see."""
    lang, runs = ctx.lang, []
    if not job_ids:
        raise gr.Error(t("jobs.compare_need", lang), print_exception=False)
    for job_id in job_ids:
        job = find_job(ctx, job_id)
        if job is None or job.kind != "train" or not job.params.get("job_dir"):
            raise gr.Error(t("jobs.not_found", lang).format(job=job_id), print_exception=False)
        if viewer_level(job, request, ctx) == "other":  # the same rule as the job's details
            raise gr.Error(t("jobs.not_allowed", lang).format(user=current_user(request, ctx).name, job=job.id,
                           owner=job.owner, action=t("jobs.action.compare", lang)), print_exception=False)
        if job.state not in COMPARABLE:
            raise gr.Error(t("jobs.cannot_compare", lang).format(job=job.id, state=t(f"jobs.state.{job.state}",
                                                                                      lang)), print_exception=False)
        try:
            runs.append(compare_run(training_files(job)))
        except FileNotFoundError:
            raise gr.Error(t("jobs.compare_no_metrics", lang).format(job=job.id), print_exception=False) from None
    return runs


def do_compare(job_ids, metric, request: gr.Request, ctx: AppContext):
    """finetune.compare's table (one row per run) and its metric by step, one line per run, for the picked runs."""
    from finetune.compare import table, task_metrics

    runs = compare_runs(job_ids, request, ctx)
    metrics = task_metrics(runs)
    if not metrics:
        raise gr.Error(t("jobs.compare_no_metric", ctx.lang), print_exception=False)
    metric = metric if metric in metrics else metrics[0]
    rows = pd.DataFrame(table(runs, metric))
    points = pd.DataFrame([{"step": r["step"], "value": r[metric], "run": run["name"]}
                           for run in runs for r in run["metrics"] if metric in r], columns=["step", "value", "run"])
    return rows, gr.LinePlot(value=points, y_title=metric), gr.update(choices=metrics, value=metric)


def select_row(event: gr.SelectData):
    return (event.row_value or [None])[0]


def build(ctx: AppContext) -> None:
    lang = ctx.lang
    gr.Markdown(t("jobs.intro", lang).format(slots=ctx.max_running_jobs))
    table = gr.Dataframe(jobs_frame(job_queue(ctx).jobs(), lang), label=t("jobs.table", lang), interactive=False,
                         max_height=420, elem_id="jobs-table")
    with gr.Row():
        job = gr.Dropdown([], label=t("jobs.job", lang), scale=4)
        refresh = gr.Button(t("jobs.refresh", lang), scale=0)
        cancel = gr.Button(t("jobs.cancel", lang), variant="stop", scale=0)
        resume = gr.Button(t("jobs.resume", lang), scale=0)
    detail = gr.Markdown(elem_id="jobs-detail")
    log = gr.Textbox(label=t("jobs.log", lang), lines=10, max_lines=10, autoscroll=True)

    list_fn, detail_fn = with_ctx(do_list, ctx), with_ctx(do_detail, ctx)
    refresh.click(list_fn, job, [table, job], api_name="jobs_list").then(detail_fn, job, [detail, log])
    cancel.click(with_ctx(do_cancel, ctx), job, [table, job, detail, log], api_name="jobs_cancel")
    resume.click(with_ctx(do_resume, ctx), job, [table, job, detail, log], api_name="jobs_resume")
    job.change(detail_fn, job, [detail, log], api_visibility="private")
    table.select(select_row, None, job, api_visibility="private")
    # The table and the selected job's state are read again every few seconds; the picker only on Refresh, so that
    # it does not change under the user's cursor.
    gr.Timer(3.0).tick(with_ctx(do_tick, ctx), job, [table, detail, log], show_progress="hidden",
                       api_visibility="private")
    gr.on(None, lambda: do_list(None, ctx), None, [table, job], api_visibility="private")  # on page load
    build_compare(ctx)


def build_compare(ctx: AppContext) -> None:
    """Finished runs side by side: finetune.compare's table and one chart, metric by step, one line per run."""
    lang = ctx.lang
    with gr.Accordion(t("jobs.compare_title", lang), open=False):
        with gr.Row():
            # Choices are per user (filled on load); any id is accepted here and checked in the handler.
            runs = gr.Dropdown([], value=[], multiselect=True, label=t("jobs.compare_runs", lang), scale=4,
                               info=t("jobs.compare_info", lang), allow_custom_value=True)
            metric = gr.Dropdown([], value=None, label=t("jobs.compare_metric", lang), allow_custom_value=True,
                                 scale=2)
            refresh = gr.Button(t("jobs.refresh", lang), scale=0)
            go = gr.Button(t("jobs.compare", lang), variant="primary", scale=0)
        rows = gr.Dataframe(label=t("jobs.compare_table", lang), interactive=False, max_height=300)
        chart = gr.LinePlot(x="step", y="value", color="run", label=t("jobs.compare_chart", lang), height=300,
                            x_title=t("finetune.axis_step", lang), color_title=t("jobs.compare_run", lang))
    choices_fn = with_ctx(do_compare_choices, ctx)  # per user: only runs they may see
    go.click(with_ctx(do_compare, ctx), [runs, metric], [rows, chart, metric], api_name="jobs_compare")
    refresh.click(choices_fn, runs, runs, api_visibility="private")
    gr.on(None, choices_fn, runs, runs, api_visibility="private")  # on page load
