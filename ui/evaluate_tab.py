"""The Evaluate tab: models (base + adapters) x validation sets -> a results table, a bar chart, breakdowns, a
per-item side-by-side view (worst first) and downloads. Run puts an evaluation job in the app's scheduler
(jobs/, AppContext.jobs), which runs evaluation/run.py when the jobs ahead have finished, and follows it; the job goes on if
the browser goes away. Results live under `<data_dir>/evaluations/`, so Run again with the same settings (after a
reload, a Stop or a restart) follows the job still running, or resumes, or reads back.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from chat.registry import RegistryError, shared_registry
from evaluation.data import DataFileError
from models.directory import shared_directory
from models.interface import adapter_of, model_name
from evaluation.prompts import DEFAULT_SYSTEM, PromptConfig
from evaluation.run import LONG_ITEMS, METHODS, MAIN_METRIC, CellResult, EvalConfig, EvalError, evaluate, file_sha256, \
    model_identity, side_by_side
from evaluation.tasks import check_datasets, get_task
from jobs.runners import eval_config_to_dict
from jobs.scheduler import ACTIVE, Job, JobStatus, QueueError
from safeio.atomic import copy_file
from safeio.worker import WorkerError, run_limited
from ui.access import current_user, gate_on_load, require, session_key
from ui.context import AppContext
from ui.errors import backend_error, job_error_text, worker_error
from ui.problems import problems_message
from ui.scratch import download_dir
from ui.jobs_tab import duration, job_queue, queue_error, waiting_text
from ui.charts import grouped_bars
from ui.polish import hide_until_filled, localize_frame
from ui.strings import t

SAMPLES = ["mc_sample.jsonl", "qa_sample.jsonl"]
FILE_TYPES = [".jsonl", ".json", ".csv"]


def metric_names(task: str) -> list[str]:
    return list(get_task(task).metrics)


def results_frame(results: list[CellResult]) -> pd.DataFrame:
    """A row per model, a column per (set, metric)."""
    rows: dict[str, dict] = {}
    for r in results:
        row = rows.setdefault(r.model, {"model": r.model})
        row.update({f"{r.dataset} · {m}": round(r.metrics[m], 2) for m in metric_names(r.task)})
        for count in get_task(r.task).method_columns.get(r.report["method"], ()):  # e.g. unparsed replies
            row[f"{r.dataset} · {count}"] = int(r.metrics[count])
        long_items = r.report.get("long_items") or {}
        for done in ("truncated", "skipped"):  # items longer than the model's context (shown only when some were)
            if long_items.get(done):
                row[f"{r.dataset} · {done}"] = int(long_items[done])
    return pd.DataFrame(list(rows.values()))


def chart_frame(results: list[CellResult]) -> pd.DataFrame:
    """One bar per (score, model). gradio's BarPlot stacks bars of one x value, which would add up the models'
    scores: so each model gets its own x value, next to the other models' bars of the same score."""
    rows = [{"bar": f"{r.dataset} · {m} · {r.model}", "model": r.model, "value": round(r.metrics[m], 2)}
            for r in results for m in metric_names(r.task)]
    return pd.DataFrame(rows, columns=["bar", "model", "value"])


def chart_html(results: list[CellResult] | None, lang: str) -> str:
    """The readable chart (ui/charts.py): one group per set with its main metric, a colour per model, values on the
    bars. The BarPlot's data stays the API's output (/evaluate_run); this is what the page shows."""
    if not results:
        return ""
    groups = list(dict.fromkeys(f"{r.dataset} · {MAIN_METRIC[r.task]}" for r in results))
    series = list(dict.fromkeys(r.model for r in results))
    values = {(f"{r.dataset} · {MAIN_METRIC[r.task]}", r.model): round(r.metrics[MAIN_METRIC[r.task]], 2)
              for r in results}
    return grouped_bars(groups, series, values, t("evaluate.axis_score", lang))


def breakdown_frame(results: list[CellResult]) -> pd.DataFrame:
    rows = [{"model": r.model, "set": r.dataset, "by": by, "group": group, "n": int(values["n"]),
             MAIN_METRIC[r.task]: round(values[MAIN_METRIC[r.task]], 2)}
            for r in results for by, groups in r.report["breakdown"].items() for group, values in groups.items()]
    return pd.DataFrame(rows)


def download_files(results: list[CellResult]) -> list[str]:
    """Every cell's files, renamed <model>__<set>__<file> so that the download list tells them apart."""
    out = download_dir("evaluate-")
    paths = []
    for r in results:
        for src in map(Path, r.files):
            target = out / f"{Path(r.dir).parent.name}__{Path(r.dir).name}__{src.name}"
            shutil.copyfile(src, target)
            paths.append(str(target))
    return paths


class EvaluateHandlers:
    def __init__(self, ctx: AppContext):
        self.ctx, self.lang = ctx, ctx.lang
        self.registry = shared_registry(ctx.model, ctx.data_dir)
        # In-process and remote models alike (the admin's endpoints); a run names them as listed.
        self.models = shared_directory(self.registry, list(ctx.endpoints), Path(ctx.data_dir) / "endpoints.yaml")
        self.queue = job_queue(ctx)

    def refresh(self, selected):
        usable = self.models.usable_models()
        return gr.update(choices=usable, value=[m for m in (selected or []) if m in usable] or usable[:1])

    def config(self, models, samples, uploads, method, batch_size, limit, shots, shots_file, max_new, system,
               long_items="truncate"):
        paths = [str(self.ctx.sample_dir / s) for s in samples or []] + [self.keep(f) for f in uploads or []]
        if not paths:
            raise gr.Error(t("evaluate.need_data", self.lang))
        if not models:
            raise gr.Error(t("evaluate.need_model", self.lang))
        names = tuple(adapter_of(m, self.registry.base_name) for m in models)
        try:
            return EvalConfig(data=tuple(paths), out_dir=str(Path(self.ctx.data_dir) / "evaluations"), models=names,
                              method=METHODS[method or 0], batch_size=int(batch_size or 8),
                              limit=int(limit) if limit else None, shots=int(shots or 0),
                              shots_data=(self.keep(shots_file),) if shots_file else (),
                              qa_max_new_tokens=int(max_new or 256),
                              prompt=PromptConfig(system=system if system is not None else DEFAULT_SYSTEM),
                              long_items=long_items or "truncate")  # an unknown value: EvalConfig's coded refusal
        except ValueError as exc:
            raise backend_error(exc, self.lang) from None

    def keep(self, file) -> str:
        """gradio's upload cache is temporary, and a queued or resumed job may run after it is gone: keep a copy
        under its own name (the set's name in the results) in a folder named by its content."""
        path = Path(_path(file))
        kept = Path(self.ctx.data_dir) / "uploads" / file_sha256(path)[:16] / path.name
        if not kept.exists():
            copy_file(path, kept)
        return str(kept)

    def check(self, config: EvalConfig) -> None:
        """Bad files and unknown models are refused at once, before the job waits its turn in the queue."""
        try:
            # Parsed in a memory-limited worker process: a hostile upload ends this request, not the server.
            run_limited(check_datasets, list(config.data) + list(config.shots_data))
        except WorkerError as exc:
            raise worker_error(exc, self.lang) from None
        except DataFileError as exc:  # each problem with its file and line, in the page's language
            raise gr.Error(problems_message(exc.problems, self.lang, exc.path), print_exception=False) from None
        try:
            for model in config.models:
                model_identity(self.models, model)
        except (DataFileError, EvalError, RegistryError, ValueError) as exc:
            raise backend_error(exc, self.lang, "evaluate") from None

    def submit(self, config: EvalConfig, user) -> Job:
        """A new job, or the same run already queued or running (a reload, another user): then follow that one."""
        params = json.loads(json.dumps({"config": eval_config_to_dict(config), "model": self.ctx.model,
                                        "data_dir": str(self.ctx.data_dir)}))
        for job in self.queue.jobs():
            if job.kind == "evaluate" and job.state in ACTIVE and job.params == params:
                return job
        names = ", ".join(model_name(adapter_of(m, self.registry.base_name), self.registry.base_name)
                          for m in config.models)
        label = f"{names} × {', '.join(Path(d).stem for d in config.data)}"
        try:
            return self.queue.submit("evaluate", user.name, params, label=label[:120])
        except QueueError as exc:
            raise queue_error(exc, self.lang) from None

    def follow(self, job_id: str, progress) -> Job:
        while (job := self.queue.get(job_id)).state in ACTIVE:
            if job.state == JobStatus.QUEUED:
                progress(0.0, desc=t("jobs.queued_progress", self.lang).format(
                    position=job.position, wait=duration(job.wait_s, self.lang)))
            elif job.total:
                info, eta = job.info, duration(job.eta_s, self.lang) if job.eta_s is not None else "…"
                progress((job.done or 0, job.total), desc=t("evaluate.progress", self.lang).format(
                    model=info.get("model", ""), set=info.get("set", ""), done=job.done or 0, total=job.total,
                    rate=info.get("items_per_s") or 0.0, eta=eta))
            time.sleep(0.5)
        return job

    def ended(self, job: Job) -> gr.Error:
        if job.state == JobStatus.CANCELLED:
            return gr.Error(t("evaluate.stopped", self.lang).format(detail=job.error or ""), print_exception=False)
        error = job_error_text(job.error, job.problem, self.lang)  # said from its code in the page's language
        return gr.Error(error or waiting_text(job, self.lang) or job.state, print_exception=False)

    def results(self, job: Job, config: EvalConfig) -> list[CellResult]:
        """The finished job's results; read back from disk when they are no longer in memory (e.g. a restart)."""
        results = self.queue.output(job.id)
        if results is None:
            try:
                results = evaluate(self.models, config)  # every cell is complete on disk: nothing is recomputed
            except (DataFileError, EvalError, RegistryError, ValueError) as exc:
                raise backend_error(exc, self.lang, "evaluate") from None
        return results

    def run(self, models, samples, uploads, method, batch_size, limit, shots, shots_file, max_new, system,
            long_items="truncate", request: gr.Request = None, progress=gr.Progress()):
        # long_items is the last input: an API call written before it existed gets the radio's default (truncate)
        user = require(request, self.ctx, "evaluate")
        config = self.config(models, samples, uploads, method, batch_size, limit, shots, shots_file, max_new, system,
                             long_items)
        self.check(config)
        job = self.submit(config, user)
        self.ctx.pages.set(session_key(request, self.ctx), job.id)  # what this page's Stop stops
        job = self.follow(job.id, progress)
        if job.state != JobStatus.COMPLETED:
            raise self.ended(job)
        results = self.results(job, config)
        sets = list(dict.fromkeys(r.dataset for r in results))
        summary = t("evaluate.summary", self.lang).format(models=len(set(r.model for r in results)), sets=len(sets),
                                                           out=config.out_dir) + long_items_note(results, self.lang)
        lang = self.lang
        return (summary, localize_frame(results_frame(results), lang), chart_frame(results),
                localize_frame(breakdown_frame(results), lang), gr.update(choices=sets, value=sets[0]),
                localize_frame(pd.DataFrame(side_by_side(results, sets[0])), lang),
                download_files(results), results)

    def stop(self, request: gr.Request):
        """Cancels this user's own evaluation job: the one this page ran, else their running or next queued one."""
        user = current_user(request, self.ctx)
        mine = [j for j in self.queue.jobs()
                if j.kind in ("evaluate", "predict") and j.state in ACTIVE and j.owner == user.name]
        session_job = self.ctx.pages.get(session_key(request, self.ctx))
        job = next((j for j in mine if j.id == session_job), mine[0] if mine else None)
        if job is None:
            return t("evaluate.nothing_running", self.lang)
        try:
            self.queue.cancel(job.id, user, self.ctx.policy)
        except QueueError as exc:
            raise queue_error(exc, self.lang) from None
        return t("evaluate.stopping", self.lang)

    def predict(self, models, test_file, answer_field, mc_output, postprocess, method, batch_size, max_new, system,
                request: gr.Request, progress=gr.Progress()):
        """A test file answered by each chosen model, as a "predict" job (jobs/runners.py); the submissions and
        their settings are the downloads. Kept under the user's own folder, so a re-run resumes their answers."""
        from evaluation.predict import MC_OUTPUTS, PREDICT_METHODS, PredictConfig, load_test_set

        user = require(request, self.ctx, "evaluate")
        if not test_file:
            raise gr.Error(t("evaluate.predict_need_file", self.lang))
        if not models:
            raise gr.Error(t("evaluate.need_model", self.lang))
        data = self.keep(test_file)
        out = Path(self.ctx.data_dir) / "predictions" / user.name / Path(data).parent.name / Path(data).name
        try:
            run_limited(load_test_set, data)  # a hostile upload ends this worker, not the server
            config = PredictConfig(data=data, out=str(out.with_name(f"{out.stem}-submission{out.suffix}")),
                                   models=tuple(adapter_of(m, self.registry.base_name) for m in models),
                                   answer_field=(answer_field or "output").strip() or "output",
                                   mc_output=MC_OUTPUTS[mc_output or 0], method=PREDICT_METHODS[method or 0],
                                   batch_size=int(batch_size or 8), max_new_tokens=int(max_new or 256),
                                   postprocess=tuple(n.strip() for n in (postprocess or "").split(",") if n.strip()),
                                   prompt=PromptConfig(system=system if system is not None else DEFAULT_SYSTEM))
        except WorkerError as exc:
            raise worker_error(exc, self.lang) from None
        except DataFileError as exc:
            raise gr.Error(problems_message(exc.problems, self.lang, exc.path), print_exception=False) from None
        except ValueError as exc:
            raise backend_error(exc, self.lang) from None
        params = {"config": json.loads(json.dumps(dataclasses.asdict(config))), "model": self.ctx.model,
                  "data_dir": str(self.ctx.data_dir)}
        job = next((j for j in self.queue.jobs() if j.kind == "predict" and j.state in ACTIVE and j.params == params),
                   None)
        try:
            job = job or self.queue.submit("predict", user.name, params, label=f"predict {Path(data).name}"[:120])
        except QueueError as exc:
            raise queue_error(exc, self.lang) from None
        self.ctx.pages.set(session_key(request, self.ctx), job.id)
        job = self.follow(job.id, progress)
        if job.state != JobStatus.COMPLETED:
            raise self.ended(job)
        results = self.queue.output(job.id)
        if results is None:  # no longer in memory (a restart): every answer is in the log, nothing is recomputed
            from evaluation.predict import predict

            results = predict(self.models, config)
        unparsed = sum(r.unparsed for r in results)
        note = t("evaluate.predict_unparsed", self.lang).format(count=unparsed) if unparsed else ""
        summary = t("evaluate.predict_done", self.lang).format(n=results[0].n if results else 0, files=len(results),
                                                               unparsed=note)
        return summary, [p for r in results for p in (r.out, r.meta)]

    def items(self, dataset, results):
        return (localize_frame(pd.DataFrame(side_by_side(results or [], dataset)), self.lang) if dataset
                else pd.DataFrame())


def long_items_note(results: list[CellResult], lang: str) -> str:
    """The summary's line about items longer than a model's context ("" when there were none): how many were cut
    from the left or skipped, over all cells; the results table has the count per cell."""
    counts = {done: sum(int((r.report.get("long_items") or {}).get(done) or 0) for r in results)
              for done in ("truncated", "skipped")}
    said = [t(f"evaluate.long_{done}", lang).format(n=n) for done, n in counts.items() if n]
    return ("\n\n" + t("evaluate.long_note", lang).format(counts=t("evaluate.long_join", lang).join(said))
            if said else "")


def _path(file) -> str:
    return file if isinstance(file, str) else file.name


def build(ctx: AppContext) -> None:
    lang, h = ctx.lang, EvaluateHandlers(ctx)
    gr.Markdown(t("evaluate.intro", lang))
    usable = h.models.usable_models()
    with gr.Row():
        models = gr.CheckboxGroup(usable, value=usable[:1], label=t("evaluate.models", lang), scale=3,
                                  elem_id="evaluate-models")
        refresh = gr.Button(t("evaluate.refresh", lang), scale=0, elem_id="evaluate-refresh")
    with gr.Row():
        samples = gr.CheckboxGroup(SAMPLES, value=SAMPLES, label=t("evaluate.samples", lang))
        uploads = gr.File(label=t("evaluate.uploads", lang), file_count="multiple", file_types=FILE_TYPES)
    with gr.Row():
        method = gr.Radio(t("evaluate.method_choices", lang).split("|"), value=t("evaluate.method_choices", lang)
                          .split("|")[0], type="index", label=t("evaluate.method", lang), info=t("evaluate.method_info", lang))
        batch_size = gr.Number(8, precision=0, minimum=1, label=t("evaluate.batch_size", lang))
        limit = gr.Number(0, precision=0, minimum=0, label=t("evaluate.limit", lang))
        max_new = gr.Number(256, precision=0, minimum=1, label=t("evaluate.max_new_tokens", lang))
        # Stable API values (EvalConfig.long_items), labels in the page's language: one script drives both mounts.
        long_items = gr.Radio([(t(f"evaluate.long_items_{v}", lang), v) for v in LONG_ITEMS], value="truncate",
                              label=t("evaluate.long_items", lang), info=t("evaluate.long_items_info", lang),
                              elem_id="evaluate-long-items")
    with gr.Accordion(t("evaluate.prompt_options", lang), open=False):
        system = gr.Textbox(DEFAULT_SYSTEM, label=t("evaluate.system", lang))
        with gr.Row():
            shots = gr.Number(0, precision=0, minimum=0, maximum=20, label=t("evaluate.shots", lang))
            shots_file = gr.File(label=t("evaluate.shots_file", lang), file_types=FILE_TYPES)
    with gr.Row():
        run = gr.Button(t("evaluate.run", lang), variant="primary")
        stop = gr.Button(t("evaluate.stop", lang), variant="stop")
    role_note = gr.Markdown(visible=False, elem_id="evaluate-role-note")
    summary = gr.Markdown(elem_id="evaluate-summary")
    table = gr.Dataframe(label=t("evaluate.results", lang), interactive=False)
    # Every (set, metric, model) value for API clients; the page shows chart_box instead (grouped, values on bars).
    chart = gr.BarPlot(x="bar", y="value", color="model", visible=False)
    chart_box = gr.HTML(elem_id="evaluate-chart", label=t("evaluate.chart", lang))
    with gr.Accordion(t("evaluate.breakdown", lang), open=False) as breakdown_box:
        breakdown = gr.Dataframe(interactive=False)
    hide_until_filled(breakdown, box=breakdown_box)
    item_set = gr.Dropdown([], label=t("evaluate.item_set", lang))
    items = gr.Dataframe(label=t("evaluate.items", lang), interactive=False, wrap=True, max_height=600,
                         show_search="search")
    downloads = gr.File(label=t("evaluate.downloads", lang), file_count="multiple", interactive=False)
    hide_until_filled(table, item_set, items, downloads)  # no empty frames before a run
    with gr.Accordion(t("evaluate.predict", lang), open=False):
        gr.Markdown(t("evaluate.predict_info", lang))
        with gr.Row():
            test_file = gr.File(label=t("evaluate.predict_file", lang), file_types=FILE_TYPES,
                                elem_id="evaluate-predict-file")
            answer_field = gr.Textbox("output", label=t("evaluate.answer_field", lang))
            mc_output = gr.Radio(t("evaluate.mc_output_choices", lang).split("|"), type="index",
                                 value=t("evaluate.mc_output_choices", lang).split("|")[0],
                                 label=t("evaluate.mc_output", lang))
        postprocess = gr.Textbox("", label=t("evaluate.postprocess", lang))
        predict = gr.Button(t("evaluate.predict_run", lang))
        predict_summary = gr.Markdown(elem_id="evaluate-predict-summary")
        submissions = gr.File(label=t("evaluate.downloads", lang), file_count="multiple", interactive=False)
    hide_until_filled(submissions)
    results = gr.State([])
    inputs = [models, samples, uploads, method, batch_size, limit, shots, shots_file, max_new, system, long_items]
    gate_on_load(ctx, "evaluate", [run], role_note)
    run.click(h.run, inputs, [summary, table, chart, breakdown, item_set, items, downloads, results],
              api_name="evaluate_run", concurrency_limit=4).then(
        lambda cells: chart_html(cells, lang), results, chart_box, api_visibility="private", show_progress="hidden")
    predict.click(h.predict, [models, test_file, answer_field, mc_output, postprocess, method, batch_size, max_new,
                              system],
                  [predict_summary, submissions], api_name="evaluate_predict", concurrency_limit=4)
    stop.click(h.stop, None, summary, api_name="evaluate_stop", queue=False)
    item_set.change(h.items, [item_set, results], items, api_name="evaluate_items")
    refresh.click(h.refresh, models, models, api_name="evaluate_models")
