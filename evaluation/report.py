"""Turning a ScoreReport into what people read (a plain-text report) and what scripts read (JSON, JSONL)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from evaluation.data import Problem
from evaluation.submission import (
    EXIT_OK, EXIT_PREDICTIONS_MALFORMED, EXIT_PREDICTIONS_MISMATCH, EXIT_REFERENCE_MALFORMED, ScoreReport,
)
from evaluation.tasks import TASKS, get_task

EXIT_MEANINGS = {
    EXIT_OK: "the predictions file is valid",
    EXIT_REFERENCE_MALFORMED: "the reference file is malformed",
    EXIT_PREDICTIONS_MALFORMED: "the predictions file is malformed",
    EXIT_PREDICTIONS_MISMATCH: "the predictions do not match the reference",
}
TASK_NAMES = {name: task.title for name, task in TASKS.items()}


def width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  " + "  ".join(pad(cell, w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def render_text(report: ScoreReport) -> str:
    lines = [f"Scored {report.predictions}", f"  against {report.reference}",
             f"Task: {get_task(report.task).title}, {report.n} reference items, aligned by {report.alignment}", ""]
    metric_rows = [[name, _fmt(name, value, report.task)] for name, value in report.metrics.items()]
    metric_rows.append(["score", f"{report.score:.2f}"])
    lines += table(["metric", "value"], metric_rows) + [""]
    for title, groups in report.breakdown.items():
        keys = [k for k in next(iter(groups.values())) if k != "n"]
        rows = [[name, str(int(v["n"])), *(f"{v[k]:.2f}" for k in keys)] for name, v in groups.items()]
        lines += [f"By {title.replace('_', ' ')}:"] + table([title, "n", *keys], rows) + [""]
    lines += render_problems(report.problems)
    lines += ["Conventions:"] + [f"  {k}: {v}" for k, v in report.to_dict()["conventions"].items()] + [""]
    lines.append(f"Exit status {report.exit_status}: {EXIT_MEANINGS[report.exit_status]}")
    return "\n".join(lines)


def render_problems(problems: list[Problem]) -> list[str]:
    if not problems:
        return ["No problems found.", ""]
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    lines = [f"Problems ({len(problems)}: {errors} error{'s' * (errors != 1)}, "
             f"{warnings} warning{'s' * (warnings != 1)}):"]
    for p in problems:
        where = f"line {p.line}" if p.line else "-"
        ident = f" id {p.id}" if p.id else ""
        lines.append(f"  [{p.severity}] {where}{ident} ({p.kind}): {p.message}")
        if p.fix:
            lines.append(f"      fix: {p.fix}")
    return lines + [""]


def render_file_error(path: str, problems: list[Problem], exit_status: int) -> str:
    lines = [f"{path}: {EXIT_MEANINGS[exit_status]}"] + render_problems(problems)
    return "\n".join(lines + [f"Exit status {exit_status}: {EXIT_MEANINGS[exit_status]}"])


def _fmt(name: str, value: float, task: str) -> str:
    return str(int(value)) if name in get_task(task).count_metrics else f"{value:.2f}"


def write_json(report: ScoreReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_per_item(report: ScoreReport, path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        for row in report.items:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def print_file_error(err, exit_reference: int, exit_predictions: int) -> int:
    """Print a broken reference or predictions file's problems to stderr; the exit status that says which it was.
    `err` is a DataFileError; a ReferenceMalformed (its subclass) carries `reference = True`."""
    import sys

    import safeio

    code = exit_reference if getattr(err, "reference", False) else exit_predictions
    print(safeio.printable(render_file_error(err.path, err.problems, code)), file=sys.stderr)
    return code
