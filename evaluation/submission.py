"""Check a predictions file against a reference file, align them, and score: the competition scorer's core.

Alignment follows DESIGN.md: by `id` when both files have ids, else by line order with the `input` checked.
Every problem found is reported with its line, id, kind, message and a fix; scores are still computed for what
aligns (a missing prediction scores as an empty, wrong answer), and the exit status says how bad the file was.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.data import (
    DataFileError, Item, Problem, ProblemError, Row, read_rows, row_id, row_problem, text_field,
)
from evaluation.tasks import Dataset, Task, get_task, load_dataset
from safeio.cli import ExitStatus

# Exit statuses of `python -m evaluation score` (defined once for every command: safeio.cli.ExitStatus).
EXIT_OK = ExitStatus.OK
EXIT_REFERENCE_MALFORMED = ExitStatus.INPUT_MALFORMED
EXIT_PREDICTIONS_MALFORMED = ExitStatus.PREDICTIONS_MALFORMED
EXIT_PREDICTIONS_MISMATCH = ExitStatus.PREDICTIONS_MISMATCH

# Answers longer than this are cut before extraction and ROUGE/BLEU. Real answers run to a few thousand characters;
# the cut keeps one huge answer from holding the scorer (ROUGE-L's LCS grows with the product of both lengths,
# segmentation and n-gram counting with the length). `--max-answer-chars` changes it.
DEFAULT_MAX_ANSWER_CHARS = 20_000

# Problem kinds that mean "the file does not line up with the reference" rather than "the file is broken".
MISMATCH_KINDS = {"missing_prediction", "unknown_id", "duplicate_id", "input_mismatch", "extra_row", "id_mismatch"}


class ReferenceMalformed(DataFileError):
    """The reference file itself is broken: nothing can be scored against it."""

    reference = True  # report.print_file_error: the reference's exit status


class WeightsError(ProblemError):
    """A --weights value that names an unknown metric or is not NAME=NUMBER: the command line's sentence (`said`)
    and a code with its params, so the Score tab says it in the page's language."""


@dataclass
class Prediction:
    line: int
    id: str | None
    output: str
    input: str | None
    broken: bool = False  # a row that could not be read; it keeps its place (and id) and scores as empty


@dataclass
class Alignment:
    """For each reference item, its prediction (None when missing), plus the problems met while aligning."""

    predictions: list[Prediction | None]
    problems: list[Problem] = field(default_factory=list)
    method: str = "id"  # "id" or "order"


def load_reference(path: str | Path, task: str = "auto") -> Dataset:
    try:
        dataset = load_dataset(path, task)
    except DataFileError as err:
        raise ReferenceMalformed(err.path, err.problems) from None
    problems = dataset.problems + [
        Problem(item.line, item.id, "empty_reference", "field 'output': the reference answer is empty",
                fix="every reference item needs a non-empty answer; ROUGE and BLEU are undefined against nothing",
                field="output")
        for item in dataset.items if not get_task(dataset.task).reference_text(item).strip()]
    if problems:
        raise ReferenceMalformed(path, problems)
    if not dataset.items:
        raise ReferenceMalformed(path, [Problem(None, None, "empty_file", "the reference has no items")])
    return dataset


def read_predictions(path: str | Path) -> tuple[list[Prediction], list[Problem]]:
    """Rows with a string `output` (and optional `id`, `input`), in file order.

    A broken row is reported as a problem and still kept, as a `broken` empty prediction in its place, so that
    alignment by line order does not shift every later line onto the wrong reference item.
    """
    read = read_rows(path)
    problems = list(read.problems)
    slots = [(p.line, Prediction(p.line, None, "", None, broken=True)) for p in read.problems if p.line]
    for row in read.rows:
        try:
            slots.append((row.line, _prediction(row)))
        except ProblemError as err:
            problems.append(row_problem(row, err, 'each line needs "output": "<your model\'s answer>"'))
            slots.append((row.line, Prediction(row.line, row_id(row), "", None, broken=True)))
    return [prediction for _, prediction in sorted(slots, key=lambda slot: slot[0])], problems


def _prediction(row: Row) -> Prediction:
    output = text_field(row, ("output",))[1]
    given_input = text_field(row, ("input",), required=False)
    return Prediction(row.line, row_id(row), output, given_input[1] if given_input else None)


def align(reference: Dataset, predictions: list[Prediction]) -> Alignment:
    readable = [p for p in predictions if not (p.broken and p.id is None)]
    by_id = all(item.id is not None for item in reference.items) and readable and all(
        p.id is not None for p in readable)
    return _align_by_id(reference, readable) if by_id else _align_by_order(reference, predictions)


def _align_by_id(reference: Dataset, predictions: list[Prediction]) -> Alignment:
    known = {item.id for item in reference.items}
    chosen: dict[str, Prediction] = {}
    problems = []
    for pred in predictions:
        if pred.id not in known:
            problems.append(Problem(pred.line, pred.id, "unknown_id", f"id {pred.id!r} is not in the reference",
                                    fix="remove this line or correct its id", field="id", params={"id": pred.id}))
        elif pred.id in chosen:
            problems.append(Problem(pred.line, pred.id, "duplicate_id",
                                    f"id {pred.id!r} already answered at line {chosen[pred.id].line}; "
                                    "the first answer is scored", fix="keep one answer per id", field="id",
                                    params={"id": pred.id, "first": chosen[pred.id].line}))
        else:
            chosen[pred.id] = pred
    aligned = [chosen.get(item.id) for item in reference.items]
    problems += [_missing(item) for item, pred in zip(reference.items, aligned) if pred is None]
    return Alignment(aligned, problems, "id")


def _align_by_order(reference: Dataset, predictions: list[Prediction]) -> Alignment:
    problems = []
    if any(p.id is not None for p in predictions) and any(i.id is not None for i in reference.items):
        problems.append(Problem(None, None, "id_mismatch", "ids are present in only some rows of the files, so "
                                "lines were matched by order", fix="give every row an id in both files, or none",
                                severity="warning"))
    aligned: list[Prediction | None] = list(predictions[: len(reference.items)])
    task = get_task(reference.task)
    for item, pred in zip(reference.items, aligned):
        if pred.input is not None and not _input_matches(pred.input, item, task):
            problems.append(Problem(pred.line, pred.id, "input_mismatch",
                                    f"input does not match reference line {item.line} "
                                    f"(reference starts {task.item_input(item)[:30]!r}, yours {pred.input[:30]!r})",
                                    fix="keep the predictions in the reference's order, one line per item",
                                    field="input", params={"ref_line": item.line}))
    for pred in predictions[len(reference.items):]:
        problems.append(Problem(pred.line, pred.id, "extra_row",
                                f"line {pred.line} is beyond the reference's {len(reference.items)} items",
                                fix="remove extra lines; there must be exactly one prediction per reference item",
                                params={"n": len(reference.items)}))
    aligned += [None] * (len(reference.items) - len(aligned))
    problems += [_missing(item) for item, pred in zip(reference.items, aligned) if pred is None]
    return Alignment(aligned, problems, "order")


def _missing(item: Item) -> Problem:
    where = f"id {item.id!r}" if item.id is not None else f"reference line {item.line}"
    return Problem(None, item.id, "missing_prediction", f"no prediction for {where}; scored as wrong/empty",
                   fix="add a line for this item", params={"where": where, "ref_line": item.line})


def _input_matches(given: str, item: Item, task: Task) -> bool:
    """Whitespace-insensitive; an item with a question of its own (multiple choice, options laid out otherwise)
    also matches on the question alone."""
    given = _normalise(given)
    if given == _normalise(task.item_input(item)):
        return True
    question = task.item_question(item)
    return question is not None and given.startswith(_normalise(question))


def _normalise(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ---------------------------------------------------------------------------------------------------------------
# Scoring


@dataclass
class ScoreReport:
    task: str
    reference: str
    predictions: str
    n: int
    metrics: dict[str, float]
    score: float
    weights: dict[str, float]
    problems: list[Problem]
    items: list[dict]
    breakdown: dict[str, dict[str, dict[str, float]]]
    alignment: str
    exit_status: int
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS
    postprocess: tuple[str, ...] = ()  # evaluation/postprocess.py options applied to the answers, in order
    extractor: str = "rules"  # how letters were read: the rules, or the rules then a judge model (evaluation/judge.py)

    def to_dict(self) -> dict:
        return {
            "task": self.task, "n": self.n, **{k: round(v, 4) for k, v in self.metrics.items()},
            "score": round(self.score, 4), "weights": self.weights, "reference": self.reference,
            "predictions": self.predictions, "alignment": self.alignment, "exit_status": self.exit_status,
            "breakdown": self.breakdown, "problems": [p.to_dict() for p in self.problems],
            "conventions": conventions(self.task, self.weights, self.max_answer_chars)
            | {"postprocess": "answers post-processed before scoring: " + (", ".join(self.postprocess) or "none")}
            | ({"extractor": self.extractor} if get_task(self.task).answers_are_letters else {}),
        }


def conventions(task: str, weights: dict[str, float],
                max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> dict[str, str]:
    if len(weights) == 1:
        score = f"score = {next(iter(weights))}"
    else:
        formula = " + ".join(f"{w:g} x {k}" for k, w in weights.items())
        score = f"score = ({formula}) / {sum(weights.values()):g}"
    return {
        **get_task(task).metric_conventions,
        "score": score,
        "alignment": "by id when both files have ids, else by line order with the input checked; "
                     "a missing prediction counts as an empty (wrong) answer and stays in the denominator",
        "decoding": "not applicable: the predictions file is scored as given (no model is run)",
        "answer_length": f"an answer longer than {max_answer_chars:,} characters is cut to its first "
                         f"{max_answer_chars:,} before answer extraction and ROUGE/BLEU (an answer_too_long warning "
                         "names its line)",
    }


def parse_weights(text: str | None, task: str) -> dict[str, float]:
    """'rouge-l=0.5,bleu-4=0.5' -> {"rouge-l": 0.5, "bleu-4": 0.5}; the task's default when empty."""
    record = get_task(task)
    if not text:
        return record.default_weights
    allowed = list(record.metrics)
    weights = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        try:
            weight = float(value)
        except ValueError:
            raise WeightsError("weights_not_pair", said=f"--weights: {part!r} is not NAME=NUMBER",
                               part=part.strip()[:40]) from None
        if name not in allowed or not math.isfinite(weight) or weight < 0:  # nan would make the score nan
            raise WeightsError("weights_bad_metric", said=f"--weights: {name!r} must be one of {', '.join(allowed)} "
                               f"with a finite weight >= 0 (got {value.strip()[:20]!r})", name=name[:40],
                               allowed=", ".join(allowed), value=value.strip()[:20])
        weights[name] = weight
    if sum(weights.values()) <= 0:
        raise WeightsError("weights_all_zero", said="--weights: at least one weight must be above 0")
    return weights


def score_submission(reference_path: str | Path, predictions_path: str | Path, task: str = "auto",
                     weights: str | None = None, max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
                     postprocess: tuple[str, ...] = ()) -> ScoreReport:
    """Check and score. Raises ReferenceMalformed or DataFileError (predictions unreadable as a whole), and
    ValueError for a max_answer_chars below 1."""
    if max_answer_chars < 1:
        raise ValueError(f"max_answer_chars must be at least 1, got {max_answer_chars}")
    reference = load_reference(reference_path, task)
    weight_map = parse_weights(weights, reference.task)
    predictions, problems = read_predictions(predictions_path)
    alignment = align(reference, predictions)
    problems += alignment.problems + cut_long_answers(alignment, reference, max_answer_chars)
    record = get_task(reference.task)
    if postprocess and record.postprocess_applies:  # evaluation/postprocess.py: named, and named in the report
        from evaluation.postprocess import apply_postprocess

        for item, pred in zip(reference.items, alignment.predictions):
            if pred is not None:
                pred.output = apply_postprocess(pred.output, postprocess, item.input)
    items, item_problems = score_items(record, reference.items, alignment.predictions)
    metrics, breakdown = record.summarise(items)
    problems += item_problems
    score = sum(w * metrics[k] for k, w in weight_map.items()) / sum(weight_map.values())
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return ScoreReport(reference.task, str(reference_path), str(predictions_path), len(reference.items), metrics,
                       score, weight_map, problems, items, breakdown, alignment.method, exit_status(problems),
                       max_answer_chars, tuple(postprocess) if record.postprocess_applies else ())


def cut_long_answers(alignment: Alignment, reference: Dataset, max_chars: int) -> list[Problem]:
    """Cut every aligned answer longer than max_chars to its first max_chars characters, in place, with a warning
    naming its line, id and field. Only aligned answers: an unknown or duplicate row is not scored anyway."""
    problems = []
    for item, pred in zip(reference.items, alignment.predictions):
        if pred is None or len(pred.output) <= max_chars:
            continue
        problems.append(Problem(pred.line, pred.id if pred.id is not None else item.id, "answer_too_long",
                                f"field 'output': the answer has {len(pred.output):,} characters; only its first "
                                f"{max_chars:,} are scored",
                                fix="send the model's answer alone; raise --max-answer-chars if such long answers "
                                    "are expected", severity="warning", field="output",
                                params={"chars": f"{len(pred.output):,}", "limit": f"{max_chars:,}"}))
        pred.output = pred.output[:max_chars]
    return problems


def exit_status(problems: list[Problem]) -> int:
    errors = [p for p in problems if p.severity == "error"]
    if any(p.kind not in MISMATCH_KINDS for p in errors):
        return EXIT_PREDICTIONS_MALFORMED
    return EXIT_PREDICTIONS_MISMATCH if errors else EXIT_OK


def score_items(task: Task, items: list, predictions: list[Prediction | None]) -> tuple[list[dict], list[Problem]]:
    """One scored row per reference item, through the task's scoring (what a model run uses too). A missing or
    unreadable prediction is an empty answer: wrong, scored 0, and kept in the denominator."""
    answers = [pred.output if pred else "" for pred in predictions]
    answered = [pred is not None and not pred.broken for pred in predictions]
    rows, problems = [], []
    for item, pred, text, ok, score in zip(items, predictions, answers, answered,
                                           task.score_answers(items, answers, answered)):
        warning = task.answer_problem(text, score) if ok else None
        if warning:
            kind, message, fix = warning
            problems.append(Problem(pred.line, item.id, kind, message, fix=fix, severity="warning", field="output",
                                    params={"text": text[:40]}))
        status = ("missing" if pred is None else "invalid" if pred.broken else
                  "unparsed" if score.get("unparsed") else "ok")
        rows.append({"line": item.line, "pred_line": pred.line if pred else None, "id": item.id,
                     **task.item_fields(item), "prediction": text, **score, "status": status})
    return rows, problems
