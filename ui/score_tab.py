"""The "Score a submission" tab: reference + predictions in, scores, problems, per-item table and downloads out."""

from __future__ import annotations


import gradio as gr
import pandas as pd

import json

from evaluation.check import CheckReport, check_or_score
from evaluation.data import DataFileError
from evaluation.report import write_json, write_per_item
from evaluation.submission import ReferenceMalformed, ScoreReport, WeightsError
from evaluation.tasks import TASKS as TASK_RECORDS, get_task
from safeio.worker import WorkerError, run_limited
from ui.access import require
from ui.context import AppContext
from ui.problems import fix_text, problem_text, problems_message
from ui.scratch import download_dir
from ui.polish import hide_until_filled, localize_frame
from ui.strings import t
from ui.errors import backend_error

# The API takes these keys, the page shows the labels: one script works on / and on /zh/.
OWN_FILES = "none"
SAMPLES = {  # key -> (label string, reference, predictions), files relative to the sample directory
    "mc_sample": ("score.sample_mc", "mc_sample.jsonl", "mc_sample_predictions.jsonl"),
    "qa_sample": ("score.sample_qa", "qa_sample_competition.jsonl", "qa_sample_predictions.jsonl"),
}
TASKS = ["auto", *TASK_RECORDS]  # the radio's values, in the order of score.task_choices (its labels)
FILE_TYPES = [".jsonl", ".json", ".csv"]
PROBLEM_COLUMNS = ["severity", "line", "id", "kind", "message", "fix"]


def problems_frame(problems, lang: str = "en") -> pd.DataFrame:
    """The problems as a table, each message and fix in the page's language (ui/problems.py)."""
    rows = [{**{c: p.to_dict()[c] for c in PROBLEM_COLUMNS}, "message": problem_text(p, lang), "fix": fix_text(p, lang)}
            for p in problems]
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


def scores_frame(report: ScoreReport, lang: str) -> pd.DataFrame:
    rows = [[name, round(value, 2)] for name, value in report.metrics.items()] + [["score", round(report.score, 2)]]
    for title, groups in report.breakdown.items():
        for group, values in groups.items():
            key = get_task(report.task).main_metric
            rows.append([f"{key} · {group} (n={int(values['n'])})", round(values[key], 2)])
    return pd.DataFrame(rows, columns=[t("score.col_metric", lang), t("score.col_value", lang)])


def items_frame(report: ScoreReport) -> pd.DataFrame:
    """Worst first, by the task's sort columns: wrong/missing/unparsed before right for multiple choice, lowest
    ROUGE-L first for free-form."""
    task = get_task(report.task)
    frame = pd.DataFrame(report.items).sort_values(list(task.sort_by), kind="stable")
    if task.rounded:
        frame[list(task.rounded)] = frame[list(task.rounded)].round(2)
    return frame[list(task.item_columns)]


def resolve_inputs(sample: str, reference, predictions, ctx: AppContext) -> tuple[str, str]:
    if sample in SAMPLES:
        _, ref, pred = SAMPLES[sample]
        return str(ctx.sample_dir / ref), str(ctx.sample_dir / pred)
    if not reference or not predictions:
        raise gr.Error(t("score.need_files", ctx.lang))
    return _path(reference), _path(predictions)


def _path(file) -> str:
    return file if isinstance(file, str) else file.name


def write_downloads(report: ScoreReport) -> list[str]:
    out = download_dir("score-")
    write_json(report, out / "report.json")
    write_per_item(report, out / "items.jsonl")
    return [str(out / "report.json"), str(out / "items.jsonl")]


def score(sample, reference, predictions, task, weights, ctx: AppContext):
    ref_path, pred_path = resolve_inputs(sample, reference, predictions, ctx)
    lang = ctx.lang
    try:
        # In a memory-limited worker process: a hostile upload ends this request, not the server.
        report = run_limited(check_or_score, ref_path, pred_path, task or "auto", weights or None)
    except WorkerError as err:
        raise gr.Error(t(f"safeio.worker_{err.kind}", lang).format(detail=err), print_exception=False) from None
    except ReferenceMalformed as err:
        gr.Warning(t("score.status_3", lang))
        problems = localize_frame(problems_frame(err.problems, lang), lang)
        return f"**{t('score.status_3', lang)}**", None, problems, None, None
    except DataFileError as err:
        gr.Warning(t("score.status_4", lang))
        problems = localize_frame(problems_frame(err.problems, lang), lang)
        return f"**{t('score.status_4', lang)}**", None, problems, None, None
    except WeightsError as err:
        raise backend_error(err, lang) from None
    status = t("score.status_ok" if report.exit_status == 0 else f"score.status_{report.exit_status}", lang)
    if isinstance(report, CheckReport):  # a test file without answers: checked, not scored
        out = download_dir("check-")
        (out / "check.json").write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        return (t("score.checked", lang).format(n=report.n, status=status), None,
                problems_frame(report.problems, lang), None, [str(out / "check.json")])
    # A task the page has no word for yet (a new record, before ui/strings.py names it) shows its record's title.
    task_name = dict(zip(TASKS, t("score.task_choices", lang).split("|"))).get(report.task) or \
        get_task(report.task).title
    summary = t("score.summary", lang).format(score=report.score, task=task_name, n=report.n, status=status)
    return (summary, scores_frame(report, lang), localize_frame(problems_frame(report.problems, lang), lang),
            localize_frame(items_frame(report), lang), write_downloads(report))


def what_if_table(sample, reference, predictions, ctx: AppContext) -> pd.DataFrame:
    """ROUGE/BLEU of a free-form submission with each post-processing option off and on (evaluation/whatif.py)."""
    from evaluation.metrics import QA_METRICS
    from evaluation.whatif import what_if

    ref_path, pred_path = resolve_inputs(sample, reference, predictions, ctx)
    try:
        rows = run_limited(what_if, ref_path, pred_path)
    except WorkerError as err:
        raise gr.Error(t(f"safeio.worker_{err.kind}", ctx.lang).format(detail=err), print_exception=False) from None
    except DataFileError as err:  # ReferenceMalformed too
        raise gr.Error(problems_message(err.problems, ctx.lang, err.path), print_exception=False) from None
    return pd.DataFrame([[r.name, *(round(r.metrics[m], 2) for m in QA_METRICS)] for r in rows],
                        columns=[t("score.what_if_col", ctx.lang), *QA_METRICS])


def build(ctx: AppContext) -> None:
    lang = ctx.lang
    gr.Markdown(t("score.intro", lang))
    sample_choices = [(t("score.sample_none", lang), OWN_FILES)] + [(t(label, lang), key)
                                                                   for key, (label, _, _) in SAMPLES.items()]
    task_choices = list(zip(t("score.task_choices", lang).split("|"), TASKS))
    with gr.Row():
        sample = gr.Dropdown(sample_choices, value=OWN_FILES, label=t("score.sample", lang))
        task = gr.Radio(task_choices, value="auto", label=t("score.task", lang))
    with gr.Row():
        reference = gr.File(label=t("score.reference", lang), elem_id="score-reference", file_types=FILE_TYPES)
        predictions = gr.File(label=t("score.predictions", lang), elem_id="score-predictions", file_types=FILE_TYPES)
    with gr.Accordion(t("score.options", lang), open=False):
        weights = gr.Textbox(label=t("score.weights", lang), placeholder="rouge-l=1")
    run = gr.Button(t("score.run", lang), variant="primary")
    summary = gr.Markdown(elem_id="score-summary")
    with gr.Row():
        scores = gr.Dataframe(label=t("score.scores", lang), interactive=False, scale=1)
        downloads = gr.File(label=t("score.downloads", lang), file_count="multiple", interactive=False, scale=1)
    problems = gr.Dataframe(label=t("score.problems", lang), interactive=False, wrap=True,
                            column_widths=["8%", "6%", "14%", "14%", "33%", "25%"])
    items = gr.Dataframe(label=t("score.items", lang), interactive=False, wrap=True, max_height=600,
                         show_search="search")
    hide_until_filled(scores, downloads, problems, items)  # no "1 2 3" placeholder tables before a score
    with gr.Accordion(t("score.what_if", lang), open=False):
        gr.Markdown(t("score.what_if_info", lang))
        what_if_run = gr.Button(t("score.what_if", lang))
        what_if_rows = gr.Dataframe(interactive=False, elem_id="score-what-if")
    hide_until_filled(what_if_rows)

    def run_what_if(sample_, reference_, predictions_, request: gr.Request):
        require(request, ctx, "score")
        return what_if_table(sample_, reference_, predictions_, ctx)

    what_if_run.click(run_what_if, [sample, reference, predictions], what_if_rows, api_name="score_what_if",
                      concurrency_limit=ctx.score_concurrency, concurrency_id="score_submission")

    def run_score(sample_, reference_, predictions_, task_, weights_, request: gr.Request):
        require(request, ctx, "score")
        return score(sample_, reference_, predictions_, task_, weights_, ctx)

    # Its own limit and id: one user's large file holds one of these slots, not the one slot every event shares
    # (--concurrency defaults to 1), so a second user's small file is scored meanwhile. A plain def: gradio runs
    # it in a worker thread, off the event loop.
    run.click(run_score, [sample, reference, predictions, task, weights],
              [summary, scores, problems, items, downloads], api_name="score_submission",
              concurrency_limit=ctx.score_concurrency, concurrency_id="score_submission")
