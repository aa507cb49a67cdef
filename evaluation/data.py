"""Reading evaluation data: raw rows from JSONL / JSON / CSV files, then multiple-choice and free-form items.

This module knows rows and the item kinds, not tasks: the task records (evaluation/tasks.py) sit above it, name the
parser of each kind and load a whole file as a task's items (`evaluation.tasks.load_dataset`).

Every problem names the file, the line and the field. Readers collect problems instead of stopping at the first,
so a user sees everything wrong with a file in one go; nothing is skipped silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from safeio import Limits, SafeReadError
from safeio.errors import NotUtf8
from safeio.problems import Problem, ProblemError, from_read_error
from safeio.records import read_records

MAX_ANSWER_LETTERS = 6
LETTERS = "ABCDEF"


class DataFileError(Exception):
    """A file that cannot be used at all, or a row that cannot be turned into an item."""

    def __init__(self, path: str | Path, problems: list[Problem]):
        self.path = str(path)
        self.problems = problems
        lines = [f"{self.path}{f':{p.line}' if p.line else ''}: {p.message}" for p in problems[:20]]
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__("\n".join(lines) + more)

    def __reduce__(self):  # crosses the worker process boundary (safeio.worker) with its problems
        return type(self), (self.path, self.problems)


@dataclass(frozen=True)
class Row:
    line: int
    data: dict[str, Any]


class Item(Protocol):
    """What every kind of item has, whatever its task: code that handles items of any task (alignment, keys, the
    per-item log) relies on these only; what differs by kind is read through the item's task record."""

    id: str | None
    line: int  # 1-based line (or JSON-array element) of the file it came from
    source: str | None


@dataclass(frozen=True)
class MCItem:
    id: str | None
    question: str
    options: dict[str, str]
    answer: str  # sorted letters, e.g. "B" or "BD"
    line: int
    source: str | None = None
    category: str | None = None
    input_text: str = ""  # the text as the file gave it (competition style: question with options inlined)


@dataclass(frozen=True)
class QAItem:
    id: str | None
    input: str
    output: str
    line: int
    source: str | None = None


@dataclass
class ReadResult:
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Raw rows


# What to do about a refusal of the bounded readers (safeio), by its kind.
SAFE_READ_FIXES = {
    "missing_file": "check the path", "not_a_file": "give the path of a data file",
    "limit": "split the file, shorten the value, or raise the limit with the flag or variable named",
    "encoding": "re-save the file as UTF-8, e.g. `iconv -f GB18030 -t UTF-8 in.jsonl > out.jsonl`",
    "bad_json": "each line must be one complete JSON object (check quotes, commas and brackets), or the file one "
                "array of objects",
    "not_object": 'each row must be an object like {"id": ..., "output": ...}',
    "bad_csv": "check the quotes: a quote inside a value is written twice (\"\"), and cells with commas are quoted",
    "empty_file": "export the data again; the file has no rows",
}


def safe_read_problem(err: SafeReadError) -> Problem:
    return from_read_error(err, SAFE_READ_FIXES.get(err.kind, ""))


def read_rows(path: str | Path, limits: Limits | None = None) -> ReadResult:
    """Rows of a JSONL, JSON (array of objects), CSV or TSV file (safeio.records), each with its 1-based line
    number, read within `limits` (default: the ones in force). A problem with a row is collected; a file that
    cannot be read at all (or is not UTF-8: every line after would be suspect) raises DataFileError."""
    path = Path(path)
    result = ReadResult()
    try:
        for line, record in read_records(path, limits):
            if isinstance(record, SafeReadError):
                if isinstance(record, NotUtf8):  # the reference's lines after it cannot be trusted either
                    raise record
                result.problems.append(safe_read_problem(record))
            else:
                result.rows.append(Row(line, record))
    except SafeReadError as err:
        raise DataFileError(path, [safe_read_problem(err)]) from None
    if not result.rows and not result.problems:
        raise DataFileError(path, [safe_read_problem(SafeReadError(path, None, "", "the file is empty",
                                                                   "empty_file"))])
    return result


# ---------------------------------------------------------------------------------------------------------------
# Items


# A row that cannot be turned into an item raises safeio's ProblemError (a code and params, no English to parse);
# the reader places it at its line with row_problem.


def row_problem(row: Row, err: ProblemError, default_fix: str = "") -> Problem:
    """A row that could not be read, as a problem (kind "bad_<field>") whose message always names the field."""
    return replace(err.at(row.line, row_id(row), kind=f"bad_{err.field}", fix=default_fix), message=str(err))


def row_id(row: Row) -> str | None:
    value = row.data.get("id")
    return None if value is None or value == "" else str(value)


def short(value: Any, limit: int = 60) -> str:
    """A value in a message, cut: a row may hold a million characters, a message should not."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_field(row: Row, names: tuple[str, ...], required: bool = True) -> tuple[str, str] | None:
    """The first of `names` present in the row, checked to be a string: (field name, value)."""
    for name in names:
        if name in row.data and row.data[name] is not None:
            value = row.data[name]
            if not isinstance(value, str):
                raise ProblemError("not_string", name, type=type(value).__name__, value=short(value),
                                   example=short(value, 30))
            return name, value
    if required:
        wanted = " or ".join(f"'{n}'" for n in names)
        present = sorted(row.data)
        found = ", ".join(str(n)[:40] for n in present[:20]) or "none"
        found += f", ... {len(present) - 20} more" if len(present) > 20 else ""
        raise ProblemError("missing_fields", names[0], wanted=wanted, found=found)
    return None


# Option lines: "A. text", "A：text", "A、text", "(A) text", "A text". The separator (or a space) is required so
# that a question line starting with a capital letter ("CT 示...") is not read as an option.
# Full-width letters are accepted; the option text itself is kept exactly as written.
_OPTION_LINE = re.compile(r"^\s*[\(（]?([A-Fa-fＡ-Ｆａ-ｆ])[\)）]?\s*(?:[\.．、:：]|\s)\s*(\S.*)$")


def parse_option_lines(lines: list[str]) -> dict[str, str] | None:
    """Options from consecutive lines lettered A, B, C... in order; None unless there are at least two."""
    options: dict[str, str] = {}
    for line in lines:
        match = _OPTION_LINE.match(line)
        # Letters must rise from A; a gap is allowed (real exam files drop a withdrawn option, e.g. A B D E).
        letter = unicodedata.normalize("NFKC", match.group(1)).upper() if match else ""
        if not letter or letter <= max(options, default="") or (not options and letter != "A"):
            return None
        options[letter] = match.group(2).strip()
    return options if len(options) >= 2 else None


def split_inline_options(text: str) -> tuple[str, dict[str, str]] | None:
    """Competition style: the question, then option lines A..F at the end. Returns (question, options)."""
    lines = _literal_newlines(text).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for start in range(len(lines) - 2, -1, -1):
        options = parse_option_lines(lines[start:])
        if options and next(iter(options)) == "A":
            question = "\n".join(lines[:start]).strip()
            return (question, options) if question else None
    return None


def _literal_newlines(text: str) -> str:
    """CMExam writes option lines joined by a literal backslash-n. Only text with no real newline is read that way,
    so LaTeX such as `\\neq` inside ordinary multi-line text stays intact."""
    return text if "\n" in text else text.replace("\\n", "\n")


def parse_options(value: Any) -> dict[str, str]:
    """Options as a dict {"A": text}, a list of texts, or one string of lettered lines (CMExam's literal \\n)."""
    if isinstance(value, dict):
        options = {unicodedata.normalize("NFKC", str(k)).strip().upper(): v for k, v in value.items()}
        if not options or any(k not in LETTERS or not isinstance(v, str) for k, v in options.items()):
            raise ProblemError("options_not_letters", "options")
        return dict(sorted(options.items()))
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if len(value) > len(LETTERS):
            raise ProblemError("too_many_options", "options", limit=len(LETTERS), count=len(value))
        return dict(zip(LETTERS, value))
    if isinstance(value, str):
        options = parse_option_lines([ln for ln in _literal_newlines(value).split("\n") if ln.strip()])
        if options:
            return options
    raise ProblemError("options_unreadable", "options", value=repr(str(value)[:60]))


def parse_answer_letters(value: Any, options: dict[str, str], field_name: str) -> str:
    """A reference answer like "B", "BD", "B,D", "B、D" -> sorted letters, all of them among the options."""
    if not isinstance(value, str):
        raise ProblemError("answer_not_string", field_name, type=type(value).__name__)
    letters = re.sub(r"[\s,，、;；/和与]", "", unicodedata.normalize("NFKC", value)).upper()
    if not letters or not set(letters) <= set(LETTERS) or len(letters) > MAX_ANSWER_LETTERS:
        raise ProblemError("answer_not_letters", field_name, value=short(value), limit=MAX_ANSWER_LETTERS)
    unknown = sorted(set(letters) - set(options))
    if unknown:
        raise ProblemError("answer_unknown_option", field_name, value=short(value), letters=", ".join(unknown),
                           options=", ".join(options))
    return "".join(sorted(set(letters)))


def parse_mc_row(row: Row, labelled: bool = True) -> MCItem:
    """A multiple-choice row; `labelled=False` reads a test file's row, whose answer is absent (answer "")."""
    meta = {"source": _opt_str(row, "source"), "category": _opt_str(row, "category") or _opt_str(row, "subject")}
    if "options" in row.data:
        question = text_field(row, ("question", "input", "Question"))[1]
        options = parse_options(row.data["options"])
        answer = mc_answer(row, ("answer", "output", "Answer"), options) if labelled else ""
        return MCItem(row_id(row), question.strip(), options, answer, row.line, input_text=question, **meta)
    input_field, text = text_field(row, ("input", "question"))
    split = split_inline_options(text)
    if split is None:
        raise ProblemError("no_options", input_field)
    answer = mc_answer(row, ("output", "answer"), split[1]) if labelled else ""
    return MCItem(row_id(row), split[0], split[1], answer, row.line, input_text=text, **meta)


def mc_answer(row: Row, fields: tuple[str, ...], options: dict) -> str:
    answer_field, answer = text_field(row, fields)
    return parse_answer_letters(answer, options, answer_field)


def parse_qa_row(row: Row, labelled: bool = True) -> QAItem:
    """A free-form row; `labelled=False` reads a test file's row, whose answer is absent (output "")."""
    if "instruction" in row.data:
        instruction = text_field(row, ("instruction",))[1]
        extra = text_field(row, ("input",), required=False)
        prompt = instruction + ("\n" + extra[1] if extra and extra[1].strip() else "")
    else:
        prompt = text_field(row, ("input", "question"))[1]
    output = text_field(row, ("output", "answer"))[1] if labelled else ""
    return QAItem(row_id(row), prompt, output, row.line, source=_opt_str(row, "source"))


def _opt_str(row: Row, name: str) -> str | None:
    value = row.data.get(name)
    return str(value) if value not in (None, "") else None


def looks_like_mc(row: Row) -> bool:
    if "options" in row.data:
        return True
    text = row.data.get("input") or row.data.get("question")
    answer = row.data.get("output") or row.data.get("answer")
    if not isinstance(text, str) or not isinstance(answer, str):
        return False
    letters = re.sub(r"[\s,，、]", "", unicodedata.normalize("NFKC", answer)).upper()
    return bool(re.fullmatch(r"[A-F]{1,6}", letters)) and split_inline_options(text) is not None
