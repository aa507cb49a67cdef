"""Check a submission against the test file it answers, without scoring: what a participant runs before uploading.

`python -m evaluation check --test test.jsonl --pred submission.jsonl` (and `score` when the reference has no
answers). Checked: the same count of lines; ids (when both files have them) or line order; every field of the test
line echoed unchanged where the submission has it; the answer field present and a string; multiple-choice letters
within each item's own options; empty answers; duplicate lines; the encoding (a file that is not UTF-8 is refused
whole, and a U+FFFD replacement character, the mark of an earlier bad decode, is warned about). Every problem names
its line, id and field. Exit statuses as `score`: 0 valid, 3 the test file is malformed, 4 the submission is
malformed, 5 it does not match the test file.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from evaluation.data import LETTERS, DataFileError, Problem, Row, read_rows, row_id, short
from evaluation.predict import TestSet, load_test_set
from evaluation.tasks import get_task
from evaluation.submission import (
    EXIT_OK, EXIT_PREDICTIONS_MALFORMED, EXIT_PREDICTIONS_MISMATCH, MISMATCH_KINDS, ReferenceMalformed,
)

# Kinds of problem that mean "does not line up with the test file" (exit 5) rather than "broken" (exit 4).
CHECK_MISMATCH_KINDS = MISMATCH_KINDS | {"field_changed", "duplicate_row"}
ANSWER_FIELDS = ("output", "answer", "Answer")


@dataclass
class CheckReport:
    test: str
    predictions: str
    task: str
    n: int  # lines in the test file
    n_predictions: int
    alignment: str  # "id" or "order"
    problems: list[Problem]
    exit_status: int

    def to_dict(self) -> dict:
        return {"test": self.test, "predictions": self.predictions, "task": self.task, "n": self.n,
                "n_predictions": self.n_predictions, "alignment": self.alignment, "exit_status": self.exit_status,
                "problems": [p.to_dict() for p in self.problems]}


def is_unlabelled(path: str | Path) -> bool:
    """A test file: no row has a non-empty answer (output / answer) of its own."""
    try:
        rows = read_rows(path).rows
    except DataFileError:
        return False
    return bool(rows) and not any(str(r.data.get(name) or "").strip() for r in rows for name in ANSWER_FIELDS)


def check_submission(test_path: str | Path, pred_path: str | Path, answer_field: str = "output",
                     task: str = "auto", letters_only: bool = True) -> CheckReport:
    """Every problem of a submission against its test file. Raises ReferenceMalformed (the test file cannot be
    read) or DataFileError (the submission cannot be read at all: not UTF-8, not JSON, empty).

    letters_only: multiple choice answers must be option letters only ("B", "BD"), as competitions expect."""
    try:
        test = load_test_set(test_path, task)
    except DataFileError as err:
        raise ReferenceMalformed(err.path, err.problems) from None
    read = read_rows(pred_path)
    problems = list(read.problems)  # rows that could not be read: malformed (4), named by line
    rows = read.rows
    by_id = all(item.id is not None for item in test.items) and rows and all(row_id(r) is not None for r in rows)
    pairs, align_problems = (_align_by_id if by_id else _align_by_order)(test, rows)
    problems += align_problems
    for test_row, item, row in pairs:
        problems += _check_pair(test, test_row, item, row, answer_field, letters_only)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    errors = [p for p in problems if p.severity == "error"]
    status = (EXIT_PREDICTIONS_MALFORMED if any(p.kind not in CHECK_MISMATCH_KINDS for p in errors)
              else EXIT_PREDICTIONS_MISMATCH if errors else EXIT_OK)
    return CheckReport(str(test_path), str(pred_path), test.task, len(test.items), len(rows) + len(read.problems),
                       "id" if by_id else "order", problems, status)


def _align_by_id(test: TestSet, rows: list[Row]):
    known = {item.id: (test_row, item) for test_row, item in zip(test.rows, test.items)}
    chosen: dict[str, Row] = {}
    problems = []
    for row in rows:
        rid = row_id(row)
        if rid not in known:
            problems.append(Problem(row.line, rid, "unknown_id", f"id {rid!r} is not in the test file",
                                    fix="remove this line or correct its id", field="id", params={"id": rid}))
        elif rid in chosen:
            problems.append(Problem(row.line, rid, "duplicate_id", f"id {rid!r} already answered at line "
                                    f"{chosen[rid].line}", fix="keep one answer per id", field="id",
                                    params={"id": rid, "first": chosen[rid].line}))
        else:
            chosen[rid] = row
    pairs = [(known[rid][0], known[rid][1], row) for rid, row in chosen.items()]
    problems += [_missing(item) for item in test.items if item.id not in chosen]
    return pairs, problems


def _align_by_order(test: TestSet, rows: list[Row]):
    problems, seen = [], {}
    pairs = list(zip(test.rows, test.items, rows))
    for test_row, _, row in pairs:
        # The same line twice where the test file has two different lines: a copy-paste or a resumed run's slip.
        fingerprint = json.dumps(row.data, sort_keys=True, ensure_ascii=False)
        if fingerprint in seen and seen[fingerprint][1] != json.dumps(test_row.data, sort_keys=True,
                                                                       ensure_ascii=False):
            problems.append(Problem(row.line, row_id(row), "duplicate_row", f"line {row.line} repeats line "
                                    f"{seen[fingerprint][0]}, but the test file's lines differ there",
                                    fix="one line per test item, in the test file's order",
                                    params={"first": seen[fingerprint][0]}))
        seen.setdefault(fingerprint, (row.line, json.dumps(test_row.data, sort_keys=True, ensure_ascii=False)))
    for row in rows[len(test.rows):]:
        problems.append(Problem(row.line, row_id(row), "extra_row", f"line {row.line} is beyond the test file's "
                                f"{len(test.rows)} lines", fix="remove extra lines; one line per test item",
                                params={"n": len(test.rows)}))
    problems += [_missing(item) for item in test.items[len(rows):]]
    return pairs, problems


def _missing(item) -> Problem:
    where = f"id {item.id!r}" if item.id is not None else f"test line {item.line}"
    return Problem(None, item.id, "missing_prediction", f"no answer for {where}", fix="add a line for this item",
                   params={"where": where, "ref_line": item.line})


def _check_pair(test: TestSet, test_row: Row, item, row: Row, answer_field: str, letters_only: bool) -> list:
    """One submission line against its test line: echoed fields, the answer's presence, type and letters."""
    problems, rid = [], row_id(row)
    for name, value in test_row.data.items():
        if name == answer_field or name not in row.data or row.data[name] == value:
            continue
        kind = "input_mismatch" if name == "input" else "field_changed"
        problems.append(Problem(row.line, rid, kind, f"field '{name}' differs from test line {test_row.line} "
                                f"(test {short(value, 40)}, yours {short(row.data[name], 40)})",
                                fix="echo the test file's fields unchanged, in the test file's order",
                                field=name, params={"ref_line": test_row.line}))
    if answer_field not in row.data:
        return problems + [Problem(row.line, rid, "missing_answer", f"field '{answer_field}' is missing",
                                   fix=f'each line needs "{answer_field}": "<your answer>"', field=answer_field)]
    answer = row.data[answer_field]
    if not isinstance(answer, str):
        return problems + [Problem(row.line, rid, "bad_answer_type", f"field '{answer_field}' must be a string, "
                                   f"got {type(answer).__name__} {short(answer, 30)}",
                                   fix=f'write it in quotes, e.g. "{answer_field}": "B"', field=answer_field)]
    if "\ufffd" in answer:
        problems.append(Problem(row.line, rid, "replacement_char", f"field '{answer_field}' holds U+FFFD (�), the "
                                "mark of text decoded with the wrong encoding", fix="regenerate or re-save the "
                                "answers as UTF-8", severity="warning", field=answer_field))
    if not answer.strip():
        return problems + [Problem(row.line, rid, "empty_output", f"field '{answer_field}' is empty; it will score "
                                   "as wrong (0)", fix="check that generation finished for this item",
                                   severity="warning", field=answer_field)]
    if letters_only and get_task(test.task).answers_are_letters:
        problems += _letter_problems(item, row, rid, answer, answer_field)
    return problems


def _letter_problems(item, row: Row, rid, answer: str, answer_field: str) -> list[Problem]:
    letters = re.sub(r"[\s,，、;；/]", "", unicodedata.normalize("NFKC", answer)).upper()
    if not re.fullmatch(f"[{LETTERS}]+", letters):
        return [Problem(row.line, rid, "not_letters", f"field '{answer_field}': {short(answer, 40)} is not option "
                        "letters", fix='write only the letter(s), e.g. "B" or "BD" (python -m evaluation predict '
                        '--mc-output letters)', field=answer_field, params={"text": answer[:40]})]
    outside = sorted(set(letters) - set(item.options))
    if outside:
        return [Problem(row.line, rid, "letter_not_option", f"field '{answer_field}': {short(answer, 20)} names "
                        f"option {', '.join(outside)}, which this item does not have (options "
                        f"{', '.join(item.options)})", fix=f"choose among {', '.join(item.options)}",
                        field=answer_field, params={"letters": ", ".join(outside)})]
    if len(letters) != len(set(letters)):
        return [Problem(row.line, rid, "repeated_letter", f"field '{answer_field}': {short(answer, 20)} repeats a "
                        "letter", fix="write each letter once", severity="warning", field=answer_field)]
    return []


def render_check(report: CheckReport) -> str:
    from evaluation.report import EXIT_MEANINGS, render_problems

    lines = [f"Checked {report.predictions}", f"  against the test file {report.test}",
             f"Task: {report.task}, {report.n} test lines, {report.n_predictions} submission lines, aligned by "
             f"{report.alignment}", ""]
    lines += render_problems(report.problems)
    lines.append(f"Exit status {report.exit_status}: {EXIT_MEANINGS[report.exit_status]}"
                 + (" (not scored: the test file has no answers)" if report.exit_status == EXIT_OK else ""))
    return "\n".join(lines)


def check_or_score(reference: str, predictions: str, task: str = "auto", weights: str | None = None):
    """What the app's scoring tab runs in its worker process: a check (CheckReport) when the reference is a test
    file without answers, else the score (ScoreReport)."""
    from evaluation.submission import score_submission

    if is_unlabelled(reference):
        return check_submission(reference, predictions)
    return score_submission(reference, predictions, task, weights)
