"""Backend problems (safeio.problems.Problem: file, line, field, code, params) in the page's language.

The English page shows the backend's message as it is (the same words as the command lines). Other languages get
the sentence of the problem's code from ui/strings.py ("problem.<code>"), filled from its line, id, field and
params; a row error about one field ("bad_output", "bad_options", ...) uses "problem.bad_field". A code without a
sentence keeps the English message, so nothing is ever hidden.
"""

from __future__ import annotations

from pathlib import Path

from safeio.problems import Problem
from ui.strings import STRINGS, t


def _key(prefix: str, kind: str) -> str | None:
    for key in (f"{prefix}.{kind}", f"{prefix}.bad_field" if kind.startswith("bad_") else ""):
        if key in STRINGS:
            return key
    return None


def problem_text(problem: Problem, lang: str) -> str:
    """The problem's sentence (without its place: tables show the line in a column of their own)."""
    key = _key("problem", problem.kind)
    if lang == "en" or key is None:
        return problem.message
    values = {"line": problem.line, "id": problem.id, "field": problem.field or problem.kind.removeprefix("bad_"),
              "reason": problem.message, **problem.params}
    try:
        return t(key, lang).format(**values)
    except (KeyError, IndexError, ValueError):  # a sentence wanting a value this problem lacks: say it in full
        return problem.message


def fix_text(problem: Problem, lang: str) -> str:
    key = _key("problem_fix", problem.kind)
    return problem.fix if lang == "en" or key is None else t(key, lang) or problem.fix


def problem_line(problem: Problem, lang: str, path: str | None = None) -> str:
    """One line for a message box: where (the file's name, never the server's path, and the line), then what."""
    name = Path(problem.file or path or "").name
    if problem.line:
        where = t("problem.where_file" if name else "problem.where", lang).format(file=name, line=problem.line)
    else:
        where = f"{name}: " if name else ""
    return where + problem_text(problem, lang)


def problems_message(problems: list[Problem], lang: str, path: str | None = None, limit: int = 20) -> str:
    """Up to `limit` problems, one a line, for gr.Error / gr.Warning."""
    lines = [problem_line(p, lang, path) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"… (+{len(problems) - limit})")
    return "\n".join(lines)
