"""Task records: what a kind of evaluation item is, as data. The scorer (evaluation/submission.py), the model runs
(evaluation/run.py), the command lines, the tabs and the reports read the record of an item's task instead of
branching on its name, so a new kind of task is one new `Task` in `TASKS`.

A record says how a row of a file becomes an item, how an answer to it is scored (the one place that calls the
scoring code: answer extraction + metrics), how an item is asked (its prompt) and what its reference answer is,
which metrics summarise a set and which one is the headline, how a set is broken down, and which per-item columns
people see. Code that handles items of any task uses only `evaluation.data.Item` (id, line, source) and reaches
anything kind-specific through the record; nothing branches on an item's class.

Loading a file (`load_dataset`) lives here, above the row parsers of evaluation/data.py, because it needs the
records: which task a file is (`detect_task`) and how that task reads a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from evaluation.data import (
    DataFileError, Item, MCItem, QAItem, Row, looks_like_mc, parse_mc_row, parse_qa_row, read_rows,
    row_problem, split_inline_options,
)
from evaluation.extract import extract_answer
from evaluation.metrics import CONVENTIONS, QA_METRICS, mc_is_correct, mean_scores, qa_item_scores
from evaluation.prompts import PromptConfig, mc_user_text, qa_user_text
from safeio import Limits
from safeio.problems import Problem, ProblemError

# Scored rows carry these item fields under these names, whoever scored them (the scorer or a model run), so that
# one summary function serves both.
BREAKDOWN_FIELDS = ("category", "source")


@dataclass(frozen=True)
class Task:
    name: str  # the short name files, flags and reports use: "mc", "qa"
    title: str  # in English, for the CLI reports; the UI has its own words in ui/strings.py
    metrics: tuple[str, ...]  # the quality metrics (what --weights may combine, what the results table shows)
    main_metric: str  # the headline: the default score, the breakdowns' and the side-by-side view's column
    # (a file's row, labelled) -> an item (raises safeio.problems.ProblemError); labelled=False reads a test file's row,
    # whose answer is absent (what `predict` answers and `check` checks against)
    parse_row: Callable[..., Any]
    # (items, answer texts, answered flags) -> per item, the score fields of one set of keys
    score_answers: Callable[[Sequence[Any], Sequence[str], Sequence[bool]], list[dict]]
    # scored rows -> the summary: the metrics and the counts, in the order reports show them
    summarise_rows: Callable[[list[dict]], dict[str, float]]
    count_metrics: tuple[str, ...] = ()  # metrics that are counts (shown as integers)
    breakdown_by: tuple[str, ...] = ()  # row fields to break a set down by, when any row has one
    group_metrics: tuple[str, ...] = ()  # what each breakdown group shows besides its size
    methods: tuple[str, ...] = ("generate",)  # how a model answers: the first is the default
    max_new_tokens_setting: str = "qa_max_new_tokens"  # the EvalConfig field bounding a generated answer
    method_notes: dict[str, str] = field(default_factory=dict)  # the report's note on each method
    method_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # counts shown for a method
    short_names: dict[str, str] = field(default_factory=dict)  # metric -> header of the CLI's results table
    # The scorer's per-item table: the columns shown, worst first by `sort_by`, `rounded` to 2 decimals
    item_columns: tuple[str, ...] = ()
    sort_by: tuple[str, ...] = ()
    rounded: tuple[str, ...] = ()
    # A model run's rows: the fields holding the question, the reference and the answer for the side-by-side view
    question_field: str = "input"
    reference_field: str = "reference"
    item_score: Callable[[dict], float] = lambda row: 0.0  # noqa: E731 - the per-item figure, 0-100
    submitted: Callable[[dict], str] = lambda row: row["output"]  # noqa: E731 - a run row -> predictions.jsonl
    item_input: Callable[[Any], str] = lambda item: item.input  # noqa: E731 - the item's text as its file gave it
    # The item's question on its own, when its text holds more (multiple choice: the options); a predictions file's
    # `input` may match on it alone
    item_question: Callable[[Any], str | None] = lambda item: None  # noqa: E731
    # The score field a model run also records as the row's "prediction" (what the model answered, as scored)
    answer_field: str | None = None
    # An item's fields in a scored row: what it asked and what the reference says
    item_fields: Callable[[Any], dict] = lambda item: {"input": item.input, "reference": item.output}  # noqa: E731
    # (answer text, its score fields) -> (kind, message, fix) of a warning about that answer, or None
    answer_problem: Callable[[str, dict], tuple[str, str, str] | None] = lambda text, score: None  # noqa: E731
    # How an item is asked (its user turn, from the PromptConfig's template for the task) and what its reference
    # answer is as text (a worked example's assistant turn; an empty one is refused in a scorer's reference)
    user_text: Callable[[Any, PromptConfig], str] = qa_user_text
    reference_text: Callable[[Any], str] = lambda item: item.output  # noqa: E731
    # The answer is option letters read from the reply (the rules, or a judge model for what they cannot read), not
    # text scored as text: a submission is checked for letters, the judge may decide unread replies, `predict`
    # writes letters (or their options' texts) and reports name the extractor.
    answers_are_letters: bool = False

    conventions: dict[str, str] = field(default_factory=dict)  # a metric of its own: how it is computed

    @property
    def metric_conventions(self) -> dict[str, str]:
        """What every report states about how each metric is computed (metrics.CONVENTIONS for the shared ones)."""
        return {m: self.conventions.get(m) or CONVENTIONS[m] for m in self.metrics}

    @property
    def default_weights(self) -> dict[str, float]:
        return {self.main_metric: 1.0}

    @property
    def can_score_by_likelihood(self) -> bool:
        """A model may answer by the log-probabilities of the candidate answers instead of generating."""
        return "likelihood" in self.methods

    @property
    def supports_circular(self) -> bool:
        """Circular evaluation (evaluation/circular.py) asks again with the options rotated: it needs options to
        rotate and answers read by likelihood."""
        return self.answers_are_letters and self.can_score_by_likelihood

    @property
    def postprocess_applies(self) -> bool:
        """evaluation/postprocess.py rewrites answer text before it is written or scored; letters read from a reply
        are not text to rewrite, so it is not applied (and not named in reports) there."""
        return not self.answers_are_letters

    def generation_max_tokens(self, config: Any) -> int:
        """The bound on a generated answer, from the config's field this task names (EvalConfig, PredictConfig)."""
        return getattr(config, self.max_new_tokens_setting)

    def short(self, metric: str) -> str:
        return self.short_names.get(metric, metric)

    def summarise(self, rows: list[dict]) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]]]:
        """Metrics and breakdowns of scored rows, computed here once for the scorer and the model runs alike."""
        breakdown = {}
        for column in self.breakdown_by:
            values = sorted({str(r[column]) for r in rows if r.get(column)})
            if values:
                breakdown[column] = {v: {"n": sum(str(r.get(column)) == v for r in rows),
                                         **self._group([r for r in rows if str(r.get(column)) == v])}
                                     for v in values}
        return self.summarise_rows(rows), breakdown

    def _group(self, rows: list[dict]) -> dict[str, float]:
        summary = self.summarise_rows(rows)
        return {name: summary[name] for name in self.group_metrics}


# ---------------------------------------------------------------------------------------------------------------
# Multiple choice


def score_mc(items: Sequence[MCItem], answers: Sequence[str], answered: Sequence[bool]) -> list[dict]:
    """The letters read from each answer (the scorer's extraction), all-or-nothing on the sorted letter set."""
    return [score_mc_letters(item, extract_answer(text, item.options) if ok else None, ok)
            for item, text, ok in zip(items, answers, answered)]


def score_mc_letters(item: MCItem, letters: str | None, answered: bool = True) -> dict:
    """One item answered with `letters` (None: none could be read). A missing answer is wrong, not "unparsed"."""
    multi = len(item.answer) > 1
    return {"extracted": letters, "correct": mc_is_correct(letters, item.answer),
            "unparsed": answered and letters is None, "multi_answer": multi,
            "answer_type": "multi-answer" if multi else "single-answer",
            "category": item.category, "source": item.source}


def mc_answer_problem(text: str, score: dict) -> tuple[str, str, str] | None:
    if not score["unparsed"]:
        return None
    return ("empty_output" if not text.strip() else "unparsed_answer",
            f"no answer letter could be read from {text[:40]!r}; scored as wrong",
            'answer with the option letter(s), e.g. "B" or "BD"')


def summarise_mc(rows: list[dict]) -> dict[str, float]:
    multi = [r for r in rows if r["multi_answer"]]
    return {"accuracy": 100.0 * sum(r["correct"] for r in rows) / len(rows) if rows else 0.0,
            "unparsed": float(sum(r["unparsed"] for r in rows)),
            # Only the scorer has rows without an answer: a model run answers every item.
            "missing": float(sum(r.get("status") == "missing" for r in rows)),
            "invalid": float(sum(r.get("status") == "invalid" for r in rows)),
            "multi_answer_items": float(len(multi)),
            "multi_answer_accuracy": 100.0 * sum(r["correct"] for r in multi) / len(multi) if multi else 0.0}


MULTIPLE_CHOICE = Task(
    name="mc", title="multiple choice", metrics=("accuracy",), main_metric="accuracy", parse_row=parse_mc_row,
    score_answers=score_mc, summarise_rows=summarise_mc,
    count_metrics=("unparsed", "missing", "invalid", "multi_answer_items"),
    breakdown_by=("answer_type", *BREAKDOWN_FIELDS), group_metrics=("accuracy",),
    methods=("likelihood", "generate"), max_new_tokens_setting="mc_max_new_tokens",
    method_notes={
        "likelihood": "likelihood: the option letter whose first token scores highest as the next token after the "
                      "prompt (softmax over the item's letters); one letter per item, so multi-answer items are "
                      "wrong unless multi_threshold is set (then every letter with probability >= threshold)",
        "generate": "generate: greedy generation, then the scorer's answer extraction; unparsed replies are wrong; a "
                    "multi-answer item is right when the extracted letter set equals the key"},
    method_columns={"generate": ("unparsed",)}, short_names={"accuracy": "acc"},
    item_columns=("line", "id", "correct", "status", "answer", "extracted", "prediction", "question"),
    sort_by=("correct", "line"), question_field="question", reference_field="answer",
    item_score=lambda row: 100.0 * float(row["correct"]),
    submitted=lambda row: row["prediction"] or "",
    item_input=lambda item: item.input_text, item_question=lambda item: item.question,
    item_fields=lambda item: {"question": item.question, "options": item.options, "answer": item.answer},
    answer_problem=mc_answer_problem, answer_field="extracted",
    user_text=mc_user_text, reference_text=lambda item: item.answer, answers_are_letters=True,
)


# ---------------------------------------------------------------------------------------------------------------
# Free-form answers


def score_qa(items: Sequence[QAItem], answers: Sequence[str], answered: Sequence[bool]) -> list[dict]:
    """ROUGE-1/2/L and BLEU-4 against the reference (an empty answer scores 0 and stays in the denominator)."""
    scores = qa_item_scores(list(answers), [item.output for item in items])
    return [{**score, "source": item.source} for item, score in zip(items, scores)]


def qa_answer_problem(text: str, score: dict) -> tuple[str, str, str] | None:
    if text.strip():
        return None
    return "empty_output", "the answer is empty; it scores 0", "check that your generation finished for this item"


def summarise_qa(rows: list[dict]) -> dict[str, float]:
    return mean_scores([{m: r[m] for m in QA_METRICS} for r in rows])


FREE_FORM = Task(
    name="qa", title="free-form answers", metrics=QA_METRICS, main_metric="rouge-l", parse_row=parse_qa_row,
    score_answers=score_qa, summarise_rows=summarise_qa, breakdown_by=("source",), group_metrics=QA_METRICS,
    method_notes={"generate": "free-form: batched greedy generation, left padding, similar lengths"},
    item_columns=("line", "id", "rouge-l", "rouge-1", "rouge-2", "bleu-4", "prediction", "reference", "input"),
    sort_by=("rouge-l", "line"), rounded=QA_METRICS, item_score=lambda row: float(row["rouge-l"]),
    answer_problem=qa_answer_problem,
)


TASKS: dict[str, Task] = {task.name: task for task in (MULTIPLE_CHOICE, FREE_FORM)}


def looks_like_mc_row(row: Row, labelled: bool = True) -> bool:
    """Options as a field, or option lines at the end of the question and (in a labelled file) an answer of
    letters. A test file's row (labelled=False) has no answer to look at."""
    if labelled:
        return looks_like_mc(row)
    if "options" in row.data:
        return True
    text = row.data.get("input") or row.data.get("question")
    return isinstance(text, str) and split_inline_options(text) is not None


# How a file's task is told from its rows, tried in order: the first that most rows look like, each asked
# (row, labelled). The last task is what a file is when it looks like none of these.
DETECTORS: tuple[tuple[str, Callable[[Row, bool], bool]], ...] = (("mc", looks_like_mc_row),)
FALLBACK_TASK = "qa"


def get_task(name: str) -> Task:
    """The record of a task name; ValueError naming the known ones for anything else."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (expected one of {', '.join(TASKS)})") from None


def detect_task(rows: list[Row], labelled: bool = True) -> str:
    """The task most rows look like (DETECTORS), e.g. "mc" when most rows are multiple choice. labelled=False:
    the rows are a test file's, without answers."""
    for name, looks_like in DETECTORS:
        if rows and sum(looks_like(r, labelled) for r in rows) * 2 > len(rows):
            return name
    return FALLBACK_TASK


# ---------------------------------------------------------------------------------------------------------------
# A whole file as a task's items


@dataclass
class Dataset:
    path: str
    task: str  # a name in evaluation.tasks.TASKS: "mc" or "qa"
    items: list[Item]  # all of the task's kind (its parse_row's)
    problems: list[Problem]


def load_dataset(path: str | Path, task: str = "auto", limits: Limits | None = None) -> Dataset:
    """Read and parse an evaluation file; problems are collected (check `problems`), never skipped silently."""
    read = read_rows(path, limits)
    task = detect_task(read.rows) if task == "auto" else task
    parse = get_task(task).parse_row
    items, problems = [], list(read.problems)
    for row in read.rows:
        try:
            items.append(parse(row))
        except ProblemError as err:
            problems.append(row_problem(row, err))
    problems.extend(_duplicate_id_problems(items))
    return Dataset(str(path), task, items, problems)


def check_datasets(paths: list[str], limits: Limits | None = None) -> list[int]:
    """Each file read and parsed, and refused whole on any problem, as an evaluation run does; the item counts.
    What the app runs in a worker process (safeio.worker) before it queues a job: no items cross back."""
    counts = []
    for path in paths:
        dataset = load_dataset(path, limits=limits)
        if dataset.problems:
            raise DataFileError(path, dataset.problems)
        if not dataset.items:
            raise DataFileError(path, [Problem(None, None, "empty_file", "no items to evaluate")])
        counts.append(len(dataset.items))
    return counts


def _duplicate_id_problems(items: list[Item]) -> list[Problem]:
    first_line: dict[str, int] = {}
    problems = []
    for item in items:
        if item.id is None:
            continue
        if item.id in first_line:
            problems.append(Problem(item.line, item.id, "duplicate_id",
                                    f"id {item.id!r} already used at line {first_line[item.id]}",
                                    fix="give every item a unique id", field="id",
                                    params={"id": item.id, "first": first_line[item.id]}))
        else:
            first_line[item.id] = item.line
    return problems
