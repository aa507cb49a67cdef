"""The Fine-tune tab: data preview, training settings, Start / Stop / Resume, and live progress of a job.

Start writes the job directory and puts the job in the app's scheduler (jobs/, AppContext.jobs), which runs it in its
own process group when the jobs ahead have finished; Stop and Resume are the scheduler's, with its owner check, for
jobs started here, by the API or on the command line alike. This tab only writes configs and reads job directories
and the scheduler, so a page reload, a second browser or an app restart re-attaches to running and finished jobs.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from finetune.config import LORA_TARGET_PRESETS, PRECISIONS, SCHEDULERS, ConfigError, TrainConfig
from finetune.formats import FORMATS, DataError, parse_column_map
from jobs.files import BadJobId, JobFiles, check_job_id, create_job, jobs_root, list_jobs
from jobs.progress import CURVE_PREFIXES, JobProgress, read_progress
from jobs.scheduler import JobNotFound, QueueError
from safeio.atomic import copy_file
from safeio.worker import WorkerError, run_limited
from ui.access import checked_model_ref, current_user, gate_on_load, require
from ui.context import AppContext
from ui.jobs_tab import (find_job, job_detail, job_queue, path_redactor, queue_error, viewer_level, waiting_text,
                         with_ctx)
from ui import model_picker
from ui.polish import hide_until_filled, localize_frame
from ui.strings import t
from ui.zerogpu import refuse_training
from ui.errors import backend_error, preflight_text, worker_error

# (TrainConfig field, advanced?) in the order the widgets appear; start/command events take them in this order.
SETTINGS = [
    ("lora_rank", False), ("lora_alpha", False), ("lora_dropout", False), ("lora_targets", False),
    ("load_in_4bit", False), ("learning_rate", False), ("lr_scheduler", False), ("num_epochs", False),
    ("max_steps", False), ("batch_size", False), ("grad_accum", False), ("cutoff_len", False),
    ("val_split", False), ("packing", False), ("seed", False),
    ("warmup_ratio", True), ("weight_decay", True), ("max_grad_norm", True), ("logging_steps", True),
    ("eval_steps", True), ("save_steps", True), ("sample_every", True), ("sample_prompts", True),
    ("precision", True), ("gradient_checkpointing", True), ("max_samples", True), ("dedup", True),
    ("adapter_name", True), ("processes", True),
    ("eval_every", True), ("eval_limit", True), ("select_by", True), ("early_stop", True), ("eval_budget", True),
]
CHOICES = {"lr_scheduler": list(SCHEDULERS), "precision": list(PRECISIONS),
           "lora_targets": list(LORA_TARGET_PRESETS) + ["q_proj,v_proj"]}
DATA_TYPES = [".jsonl", ".json", ".csv", ".xlsx"]


def setting_widget(name: str, lang: str):
    default = getattr(TrainConfig(), name)
    label = t(f"finetune.{name}", lang)
    if name in CHOICES:
        return gr.Dropdown(CHOICES[name], value=default, label=label, allow_custom_value=name == "lora_targets")
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=label, elem_classes=["setting-checkbox"])  # see ui/layout.PAGE_CSS
    if isinstance(default, (int, float)):
        return gr.Number(value=default, label=label, precision=0 if isinstance(default, int) else None)
    if isinstance(default, list):
        return gr.Textbox(value="\n".join(default), label=label, lines=2)
    return gr.Textbox(value=default, label=label)


def sample_files(ctx: AppContext) -> list[str]:
    names = [p.name for p in sorted(ctx.sample_dir.glob("*.jsonl")) if "predictions" not in p.name]
    return [n for n in names if n.startswith("train")] + [n for n in names if not n.startswith("train")]


def eval_sample_files(ctx: AppContext) -> list[str]:
    """The bundled validation sets the tab offers (multiple choice, free-form, competition style)."""
    return [p.name for p in sorted(ctx.sample_dir.glob("*.jsonl"))
            if p.name.startswith(("mc_", "qa_")) and "predictions" not in p.name]


def eval_set_paths(names, ctx: AppContext) -> list[str]:
    """Picked names -> paths; only the offered files (a name sent through the API is never a path of its own)."""
    offered = set(eval_sample_files(ctx))
    bad = [n for n in names or [] if n not in offered]
    if bad:
        raise gr.Error(t("finetune.bad_eval_set", ctx.lang).format(name=bad[0]))
    return [str(ctx.sample_dir / n) for n in names or []]


def kept_eval_uploads(uploads, ctx: AppContext) -> list[str]:
    """The user's own validation files: parsed in a memory-limited worker process as the Evaluate tab does (a hostile
    upload ends that process, not the server), refused whole with file, line and field; then kept under the data dir
    by their own name (the set's name in the metrics, e.g. accuracy:<name>) in a folder named by their content, as
    gradio's upload cache is temporary and a queued or resumed job may run after it is gone."""
    from evaluation.data import DataFileError
    from evaluation.tasks import check_datasets
    from evaluation.run import file_sha256
    from ui.problems import problems_message

    paths = [Path(u if isinstance(u, str) else u.name) for u in uploads or []]
    if not paths:
        return []
    try:
        run_limited(check_datasets, [str(p) for p in paths])
    except WorkerError as exc:
        raise worker_error(exc, ctx.lang) from None
    except DataFileError as exc:  # each problem with its file (by name) and line, in the page's language
        raise gr.Error(problems_message(exc.problems, ctx.lang, Path(exc.path).name), print_exception=False) from None
    kept = []
    for path in paths:
        target = Path(ctx.data_dir) / "uploads" / file_sha256(path)[:16] / path.name
        if not target.exists():
            copy_file(path, target)
        kept.append(str(target))
    return kept


def data_path(upload, sample: str, ctx: AppContext) -> str:
    if upload:
        return upload if isinstance(upload, str) else upload.name
    if sample:
        return str(ctx.sample_dir / sample)
    raise gr.Error(t("finetune.need_data", ctx.lang))


def config_from_widgets(model: str, path: str, data_format: str, column_map: str, values: list) -> TrainConfig:
    cfg = TrainConfig(model=(model or "").strip() or "demo", data=path, data_format=data_format or "auto",
                      column_map=parse_column_map(column_map))
    defaults = TrainConfig()
    for (name, _), value in zip(SETTINGS, values):
        kind = type(getattr(defaults, name))
        if kind is list:
            value = [line.strip() for line in (value or "").splitlines() if line.strip()]
        elif kind in (int, float) and value is not None:
            value = kind(value)
        elif kind is str:
            value = (value or "").strip()
        setattr(cfg, name, value)
    return cfg


def rejected_frame(rejected: list, dropped: list[tuple[int, str]], cutoff: int, lang: str) -> pd.DataFrame:
    """The rows a preview leaves out, each reason said from its problem code in the page's language (ui/problems.py);
    a row tokenisation dropped has one reason, said from its key. Headers too (localize_frame)."""
    from ui.problems import problem_text

    rows = [{"line": r.line, "field": r.field, "reason": problem_text(r, lang)} for r in rejected]
    rows += [{"line": line, "field": "", "reason": t("finetune.dropped_row", lang).format(cutoff=cutoff) if lang != "en"
              else why} for line, why in dropped]
    return localize_frame(pd.DataFrame(rows, columns=["line", "field", "reason"]), lang)


def do_preview(request: gr.Request, model, upload, sample, data_format, column_map, cutoff_len, ctx: AppContext):
    """Reads and tokenises the file in a memory-limited worker process (safeio.worker): an upload built to exhaust
    memory ends this request with a message, not the server. Only a user who may train may preview: it loads
    tokenizers and parses large files."""
    from finetune.preview import PRELOAD, ModelLoadError, preview_upload

    require(request, ctx, "train")
    model = checked_model_ref((model or "").strip() or "demo", ctx)  # a hub id or a directory under the roots
    path = data_path(upload, sample, ctx)
    try:
        result = run_limited(preview_upload, path, data_format or "auto", parse_column_map(column_map), model,
                             int(cutoff_len or 1024), preload=PRELOAD)
    except ModelLoadError as exc:
        if ctx.lang != "en":  # the library's English is no use on /zh/: the code's sentence names the model
            raise backend_error(exc, ctx.lang) from None
        raise gr.Error(t("finetune.bad_model", ctx.lang).format(model=model, error=exc)) from None
    except DataError as exc:  # the file's problem said from its code, in the page's language
        raise backend_error(exc, ctx.lang) from None
    except WorkerError as exc:
        raise worker_error(exc, ctx.lang) from None
    loaded, lang = result.loaded, ctx.lang
    tokens = t("finetune.preview_tokens", lang).format(
        tokens=result.tokens, trained=result.trained_tokens, truncated=result.truncated,
        cutoff=int(cutoff_len or 1024), dropped=len(result.dropped))
    summary = t("finetune.preview_summary", lang).format(
        kept=result.kept, total=loaded.total_rows, fmt=loaded.format, rejected=result.rejected,
        dup=loaded.duplicates, tokens=tokens)
    rejected = rejected_frame(loaded.rejected, result.dropped, int(cutoff_len or 1024), lang)
    trained_label = t("finetune.highlight_trained", lang)
    highlighted = []
    for i, pieces in enumerate(result.examples):
        highlighted += [("\n\n", None)] if i else []
        highlighted += [(text, trained_label if trained else None) for text, trained in pieces]
    return summary, rejected, highlighted


def job_dropdown(ctx: AppContext, value: str | None = None):
    ids = [f.job_id for f in list_jobs(ctx.data_dir)]
    return gr.Dropdown(choices=ids, value=value if value in ids else (ids[0] if ids else None))


def do_start(request: gr.Request, model, upload, sample, data_format, column_map, *values, ctx: AppContext):
    """Create the job directory and put the job in the shared queue: it runs when the jobs ahead have finished
    (one GPU or CPU per server: two runs at once would only crawl or run out of memory)."""
    user = require(request, ctx, "train")
    refuse_training(ctx.lang)  # a ZeroGPU Space lends its GPU for minutes per call: too short for a run
    model = checked_model_ref((model or "").strip() or "demo", ctx)  # a hub id or a directory under the roots
    path = data_path(upload, sample, ctx)
    if upload:  # gradio's upload cache is temporary: keep the file with the runs so the job can be re-run
        kept = Path(ctx.data_dir) / "uploads" / f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(path).name}"
        kept.parent.mkdir(parents=True, exist_ok=True)
        path = str(shutil.copyfile(path, kept))
    # The validation sets' picker follows the settings (older API clients send the settings only).
    own = values[len(SETTINGS) + 1] if len(values) > len(SETTINGS) + 1 else None  # the user's own validation files
    values, picked = list(values[:len(SETTINGS)]), (values[len(SETTINGS)] if len(values) > len(SETTINGS) else [])
    cfg = config_from_widgets(model, path, data_format, column_map, values)
    cfg.eval_sets = eval_set_paths(picked, ctx) + kept_eval_uploads(own, ctx)
    try:
        if cfg.eval_sets:  # read and checked before the job exists (file, line, field; a set of the wrong task)
            from jobs.train_eval import build_evaluator

            build_evaluator(cfg.validate())
        files = create_job(cfg, ctx.data_dir)
    except (ConfigError, DataError) as exc:
        raise backend_error(exc, ctx.lang) from None
    submit_training(files, user, ctx)
    return job_dropdown(ctx, files.job_id)


def submit_training(files: JobFiles, user, ctx: AppContext, resume: bool = False) -> None:
    label = read_progress(files, curves=False, log_lines=0).adapter_name or files.job_id
    try:
        job_queue(ctx).submit("train", user.name, {"job_dir": str(files.dir)}, label=label, job_id=files.job_id,
                              resume=resume)
    except QueueError as exc:
        raise queue_error(exc, ctx.lang) from None


def do_command(model, upload, sample, data_format, column_map, *values, ctx: AppContext):
    try:
        cfg = config_from_widgets(model, data_path(upload, sample, ctx), data_format, column_map,
                                  list(values[:len(SETTINGS)]))
    except DataError as exc:
        raise backend_error(exc, ctx.lang) from None
    cfg.eval_sets = eval_set_paths(values[len(SETTINGS)] if len(values) > len(SETTINGS) else [], ctx)
    return gr.Code(value=command_text(cfg, ctx.data_dir, ctx.lang), visible=True)


def command_text(cfg: TrainConfig, data_dir, lang: str = "en") -> str:
    """The config as YAML, with the shell line in comments: the whole text, saved as run.yaml, is a valid config
    (users paste all of it; a bare shell line below the YAML made `train --config` fail)."""
    return (f"# {t('finetune.command_head', lang)}\n"
            f"#   python -m finetune train --config run.yaml --data-dir {data_dir}\n{cfg.to_yaml()}")


def job_files(job_id: str | None, ctx: AppContext) -> JobFiles:
    """The job's files; its id checked first (a plain name: `../..` would reach outside the jobs folder)."""
    if not job_id:
        raise gr.Error(t("finetune.need_job", ctx.lang))
    try:
        return JobFiles(jobs_root(ctx.data_dir) / check_job_id(job_id))
    except BadJobId:
        raise gr.Error(t("finetune.bad_job", ctx.lang).format(job=ascii(str(job_id))[:80]),
                       print_exception=False) from None


def do_stop(job_id, request: gr.Request, ctx: AppContext):
    """Through the queue: a queued job leaves the line, a running one saves a checkpoint and stops."""
    job_files(job_id, ctx)  # a plain job name first
    try:
        job_queue(ctx).cancel(job_id, current_user(request, ctx), ctx.policy)
    except JobNotFound:  # a folder the scheduler has never seen (not a training job)
        raise gr.Error(t("jobs.not_found", ctx.lang).format(job=job_id), print_exception=False) from None
    except QueueError as exc:
        raise queue_error(exc, ctx.lang) from None
    return do_status(job_id, request, ctx)


def do_resume(job_id, request: gr.Request, ctx: AppContext):
    """Back in the queue, to continue from the last checkpoint when its turn comes."""
    files, user = job_files(job_id, ctx), require(request, ctx, "train")
    refuse_training(ctx.lang)
    progress = read_progress(files, curves=False, log_lines=0)
    if progress.stage == "completed":
        raise gr.Error(t("finetune.already_done", ctx.lang).format(job=job_id))
    try:
        job_queue(ctx).resume(job_id, user, ctx.policy)
    except JobNotFound:
        raise gr.Error(t("jobs.not_found", ctx.lang).format(job=job_id), print_exception=False) from None
    except QueueError as exc:
        raise queue_error(exc, ctx.lang) from None
    if not progress.has_checkpoint:
        gr.Warning(t("finetune.no_checkpoint", ctx.lang).format(job=job_id))
    return do_status(job_id, request, ctx)


def _fmt(value, spec: str = ".4f") -> str:
    return "–" if value is None else format(value, spec)


def status_text(progress: JobProgress, lang: str) -> str:
    eta = progress.eta_s
    text = t("finetune.status", lang).format(
        job=progress.job_id, state=progress.stage, step=progress.step,
        total="?" if progress.total_steps is None else progress.total_steps,
        speed=_fmt(progress.tokens_per_s, ".0f"),
        eta="–" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta)),
        loss=_fmt(progress.loss), eval_loss=_fmt(progress.eval_loss))
    if progress.total_steps:
        text += f"\n\n<progress value='{progress.step}' max='{progress.total_steps}' style='width:100%'></progress>"
    if progress.data is not None:
        text += f"\n\n{progress.data.text()}"
    if progress.select_by and progress.best_step is not None:
        share = progress.eval_share
        text += "\n\n" + t("finetune.best", lang).format(
            metric=progress.select_by, value=_fmt(progress.best_value, ".4g"), step=progress.best_step,
            share=_fmt(100 * share, ".0f") if share is not None else "–")
        if progress.stopped_early:
            text += " " + t("finetune.stopped_early", lang)
    if progress.stage == "completed" and progress.adapter_dir:
        path = Path(progress.adapter_dir)
        text += "\n\n" + t("finetune.adapter_ready", lang).format(name=path.name, path=path)
    if progress.stage == "failed":
        error = progress.error
        if str(progress.error_code or "").startswith("preflight."):  # a refused model: in the page's language
            error = preflight_text(progress.error_code.removeprefix("preflight."), progress.error_params, lang)
        elif str(progress.error_code or "").startswith("problem.") and lang != "en":  # a refused setting or file
            from safeio.problems import render

            error = render(progress.error_code.removeprefix("problem."), lang, progress.error_params) or error
        text += "\n\n" + t("finetune.failed", lang).format(error=error)
    return text


def loss_frame(progress: JobProgress, lang: str = "en") -> pd.DataFrame:
    """Train and validation loss, each set's headline task metric (accuracy, ROUGE-L) divided by 100 so it shares
    the axis with the loss, and the best point marked by a vertical line at its step."""
    series = {"loss": t("finetune.series_train", lang), "eval_loss": t("finetune.series_validation", lang)}
    rows = [{"step": p.step, "loss": p.value, "series": series[p.name]} if p.name in series
            else {"step": p.step, "loss": p.value / 100, "series": f"{p.name} /100"}
            for p in progress.points if p.name in series or p.name.startswith(CURVE_PREFIXES)]
    best = progress.best
    if best is not None:
        top = best.value / 100 if best.select_by != "eval_loss" else best.value
        label = t("finetune.series_best", lang).format(metric=best.select_by, step=best.step)
        rows += [{"step": best.step, "loss": y, "series": label} for y in (0.0, top)]
    return pd.DataFrame(rows, columns=["step", "loss", "series"])


def samples_text(progress: JobProgress) -> str:
    return "\n\n".join(f"**step {s.step}** · {s.prompt}\n\n> {s.answer or '(empty)'}" for s in progress.samples)


def do_status(job_id, request: gr.Request, ctx: AppContext):
    """The job's progress, loss curve, log and samples for its owner and the admin; for anyone else its line in the
    queue only (owner, state, place), as the Jobs tab shows it to everyone."""
    return job_status(job_id, request, ctx)[0]


def do_tick(job_id, last: JobProgress | None, request: gr.Request, ctx: AppContext):
    """The 2 s timer: do_status, reading only what the job wrote since this page's last tick (`last`, kept in the
    page's gr.State on the server)."""
    outputs, progress = job_status(job_id, request, ctx, since=last)
    return (*outputs, progress)


def job_status(job_id, request: gr.Request, ctx: AppContext, since: JobProgress | None = None):
    """(status text, loss frame, log, samples, status record) as this user may see them, and the JobProgress read
    (None when they may see only the job's line in the queue)."""
    empty = pd.DataFrame(columns=["step", "loss", "series"])
    if not job_id:
        return (t("finetune.no_jobs", ctx.lang), empty, "", "", {}), None
    files, job = job_files(job_id, ctx), find_job(ctx, job_id)
    level = viewer_level(job, request, ctx)
    if level == "other":
        line = {"job_id": files.job_id, "owner": job.owner if job else None, "state": job.state if job else None,
                "position": job.position if job else None}
        text = job_detail(job, ctx.lang, "other")[0] if job else t("finetune.not_yours", ctx.lang).format(job=job_id)
        return (text, empty, "", "", line), None
    progress = read_progress(files, job=job, since=since)
    text, log, samples, record = status_text(progress, ctx.lang), progress.log, samples_text(progress), progress.record
    note = waiting_text(job, ctx.lang) if job is not None else ""
    text = f"{note}\n\n{text}" if note else text
    if level == "owner":  # their own job, but not the server's paths (the upload's by its file name)
        redact = path_redactor(ctx.data_dir, progress.data_file)
        text, log, samples = redact(text), redact(log), redact(samples)
        record = {k: redact(v) for k, v in record.items() if k != "pid"}
    return (text, loss_frame(progress, ctx.lang), log, samples, record), progress


# ---------------------------------------------------------------------------------------------------------------


def _data_section(ctx: AppContext) -> list:
    lang = ctx.lang
    with gr.Row():
        model = model_picker.build(ctx)  # the catalog, sizes, fits, cached, presets (ui/model_picker.py)
        upload = gr.File(label=t("finetune.data_file", lang), file_types=DATA_TYPES, type="filepath", scale=2)
        samples = sample_files(ctx)
        sample = gr.Dropdown(samples, value=samples[0] if samples else None, label=t("finetune.sample", lang),
                             allow_custom_value=False, scale=1)
    with gr.Row():
        data_format = gr.Dropdown(["auto", *FORMATS], value="auto", label=t("finetune.format", lang))
        column_map = gr.Textbox(label=t("finetune.column_map", lang), placeholder=t("finetune.column_map_ph", lang))
    model_picker.build_catalog(ctx, model)
    return [model, upload, sample, data_format, column_map]


def _settings_section(ctx: AppContext) -> dict:
    widgets = {}
    with gr.Accordion(t("finetune.settings", ctx.lang), open=True):
        with gr.Row(equal_height=True):
            for name, advanced in SETTINGS:
                if not advanced:
                    widgets[name] = setting_widget(name, ctx.lang)
    with gr.Accordion(t("finetune.advanced", ctx.lang), open=False):
        with gr.Row(equal_height=True):
            for name, advanced in SETTINGS:
                if advanced:
                    widgets[name] = setting_widget(name, ctx.lang)
    return widgets


def build(ctx: AppContext) -> None:
    lang = ctx.lang
    gr.Markdown(t("finetune.intro", lang))
    data_inputs = _data_section(ctx)
    preview_btn = gr.Button(t("finetune.preview", lang))
    preview_summary = gr.Markdown()
    with gr.Row():
        rejected = gr.Dataframe(label=t("finetune.rejected", lang), interactive=False, max_height=300)
        examples = gr.HighlightedText(label=t("finetune.examples", lang),
                                      color_map={t("finetune.highlight_trained", lang): "green"},
                                      combine_adjacent=True, show_legend=True)
    hide_until_filled(rejected, examples)  # no "line field reason" header row before a preview
    widgets = _settings_section(ctx)
    model_picker.wire_presets(data_inputs[0], widgets)
    eval_choices = eval_sample_files(ctx)
    eval_sets = gr.Dropdown(eval_choices, value=[], multiselect=True, label=t("finetune.eval_sets", lang),
                            info=t("finetune.eval_sets_info", lang))
    eval_uploads = gr.File(label=t("finetune.eval_uploads", lang), file_types=[".jsonl", ".json", ".csv"],
                           file_count="multiple", type="filepath", value=[])  # a default: API clients may omit it
    settings = [widgets[name] for name, _ in SETTINGS] + [eval_sets, eval_uploads]
    with gr.Row():
        start_btn = gr.Button(t("finetune.start", lang), variant="primary")
        stop_btn = gr.Button(t("finetune.stop", lang), variant="stop")
        resume_btn = gr.Button(t("finetune.resume", lang))
        command_btn = gr.Button(t("finetune.show_command", lang))
    role_note = gr.Markdown(visible=False, elem_id="finetune-role-note")
    command = gr.Code(language="yaml", visible=False, value="", interactive=False)
    with gr.Row():
        ids = [f.job_id for f in list_jobs(ctx.data_dir)]
        job = gr.Dropdown(ids, value=ids[0] if ids else None, label=t("finetune.job", lang), scale=4)
        refresh_btn = gr.Button(t("finetune.refresh", lang), scale=0)
    status_md = gr.Markdown(elem_id="finetune-status")
    plot = gr.LinePlot(x="step", y="loss", color="series", label=t("finetune.loss", lang), height=280,
                       x_title=t("finetune.axis_step", lang), y_title=t("finetune.axis_loss", lang),
                       color_title=t("finetune.axis_series", lang))
    hide_until_filled(plot)
    with gr.Row():
        log = gr.Textbox(label=t("finetune.log", lang), lines=12, max_lines=12, autoscroll=True)
        samples_md = gr.Markdown(label=t("finetune.samples", lang))
    raw = gr.JSON(visible=False)
    last = gr.State(None)  # the timer's last JobProgress: the next tick reads only what the job wrote since
    outputs = [status_md, plot, log, samples_md, raw]

    status_fn = with_ctx(do_status, ctx)  # keeps the gr.Request parameter visible to gradio
    preview_btn.click(with_ctx(do_preview, ctx), data_inputs + [widgets["cutoff_len"]],
                      [preview_summary, rejected, examples], api_name="finetune_preview")
    start_btn.click(with_ctx(do_start, ctx), data_inputs + settings, job,
                    api_name="finetune_start").then(status_fn, job, outputs)
    command_btn.click(functools.partial(do_command, ctx=ctx), data_inputs + settings, command,
                      api_name="finetune_command")
    stop_btn.click(with_ctx(do_stop, ctx), job, outputs, api_name="finetune_stop")
    resume_btn.click(with_ctx(do_resume, ctx), job, outputs, api_name="finetune_resume")
    job.change(status_fn, job, outputs, api_name="finetune_status")
    refresh_btn.click(lambda value: job_dropdown(ctx, value), job, job, api_name="finetune_jobs")
    gr.Timer(2.0).tick(with_ctx(do_tick, ctx), [job, last], outputs + [last], show_progress="hidden",
                       api_visibility="private")
    # A reload re-attaches: the job list and the newest job's progress are read again from disk.
    gr.on(None, lambda: job_dropdown(ctx), None, job, api_visibility="private",  # on page load only
          show_progress="hidden")
    gate_on_load(ctx, "train", [start_btn, preview_btn], role_note)
