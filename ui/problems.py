"""Backend problems (safeio.problems.Problem: file, line, field, code, params) in the page's language.

What a code says is in safeio.problems.MESSAGES (EN and ZH beside each code; ui/strings.py takes them in as
"problem.<code>"). The English page shows the backend's message, which that same table wrote; other languages get
the code's sentence filled from the problem's line, id, field and params. A code without a sentence keeps the
English message, so nothing is ever hidden.
"""

from __future__ import annotations

from pathlib import Path

from safeio.problems import FIXES, MESSAGES, Problem, render
from ui.strings import t


def problem_text(problem: Problem, lang: str) -> str:
    """The problem's sentence (without its place: tables show the line in a column of their own)."""
    code = problem.code if problem.code in MESSAGES else "bad_field" if problem.kind.startswith("bad_") else None
    if lang == "en" or code is None:
        return problem.message
    values = {"line": problem.line, "id": problem.id, "field": problem.field or problem.kind.removeprefix("bad_"),
              "file": problem.file, "message": problem.message, **problem.params}
    return render(code, lang, values) or problem.message


def fix_text(problem: Problem, lang: str) -> str:
    """What to do about it; the code's own fix, then its kind's (a row's "bad_field"), then the backend's."""
    if lang == "en":
        return problem.fix
    values = {"field": problem.field, **problem.params}
    # A finer sentence (`say`) without a fix of its own stands alone: its kind's fix may be about another case.
    kinds = (problem.code,) if problem.say and problem.say != problem.kind else (problem.code, problem.kind)
    for code in (*kinds, "bad_field" if problem.kind.startswith("bad_") else ""):
        if code in FIXES:
            return render(code, lang, values, FIXES) or problem.fix
    return problem.fix


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
