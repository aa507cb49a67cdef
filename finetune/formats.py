"""Training data files -> one internal conversation type, with every rejected row reported by file, line and field.

Readers: JSONL (one object per line), JSON (an array of objects, or one object per line), CSV and XLSX (one row
per sample, columns mapped to fields). Row formats, auto-detected from the first readable row and overridable:

    alpaca       {"instruction", "input"?, "output", "system"?, "history"?: [[q, a], ...]}
    openai       {"messages": [{"role", "content"}, ...]}
    sharegpt     {"conversations": [{"from": "human"|"gpt"|"system", "value"}, ...], "system"?}
    chatglm      {"conversations": [{"role", "content"}, ...]}
    xtuner       {"conversation": [{"system"?, "input", "output"}, ...]}
    competition  {"input", "output"}  (also "question"/"answer")
    context      {"Context", "Response"}
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from safeio import Limits, SafeReadError, check_file
from safeio.problems import Problem, ProblemError, from_read_error
from safeio.records import names_text, read_records

FORMATS = ("alpaca", "openai", "sharegpt", "chatglm", "xtuner", "competition", "context")
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class DataError(ValueError):
    """A data file that cannot be used at all (unreadable, unknown format, no valid row). Names the file and line;
    `problem` says the same as a code and params, for the page's language."""

    def __init__(self, message: str, problem: Problem | None = None):
        super().__init__(message)
        self.problem = problem

    def __reduce__(self):  # crosses the worker process boundary (safeio.worker) with its problem
        return type(self), (str(self), self.problem)


def _data_error(message: str, code: str, path: Path | str | None = None, line: int | None = None,
                **params) -> DataError:
    return DataError(message, Problem(line, None, code, message, file=str(path) if path else None, params=params))


def _row_error(code: str, field: str, **params) -> ProblemError:
    """One row rejected: `field` is the JSON path of the offending value (e.g. "messages[2].content"); the kind of
    every training row problem is "bad_field", `code` the sentence (safeio.problems.MESSAGES)."""
    return ProblemError(code, field, kind="bad_field", **params)


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Conversation:
    messages: tuple[Message, ...]
    line: int = 0  # where it came from, for messages about it later (tokenisation, truncation)

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


# A rejected row: the one problem type of the project (file, line, field, code, parameters).
Rejected = Problem


@dataclass
class LoadResult:
    file: str
    format: str
    total_rows: int = 0
    conversations: list[Conversation] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    dropped_by_max_samples: int = 0

    def summary(self) -> str:
        return (
            f"{self.file}: format {self.format}, {self.total_rows} rows read, {len(self.conversations)} kept, "
            f"{len(self.rejected)} rejected ({self.duplicates} duplicates), "
            f"{self.dropped_by_max_samples} left out by max_samples"
        )


# ---------------------------------------------------------------------------------------------------------------
# Field helpers: each raises a ProblemError naming the field.


def _text(row: dict, key: str, path: str | None = None, required: bool = True) -> str:
    path = path or key
    if key not in row or row[key] is None:
        if required:
            raise _row_error("missing", path)
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise _row_error("expected_string", path, type=type(value).__name__,
                         value=json.dumps(value, ensure_ascii=False)[:40])
    return value


def _list(row: dict, key: str) -> list:
    if key not in row:
        raise _row_error("missing", key)
    value = row[key]
    if not isinstance(value, list):
        raise _row_error("expected_list", key, type=type(value).__name__)
    if not value:
        raise _row_error("empty_list", key)
    return value


def _obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _row_error("expected_object", path, type=type(value).__name__)
    return value


# ---------------------------------------------------------------------------------------------------------------
# Row formats: dict -> list of (role, content, field path). Validation of the turn order happens once, afterwards.

Turns = list[tuple[str, str, str]]


def _alpaca(row: dict) -> Turns:
    turns: Turns = []
    system = _text(row, "system", required=False)
    if system:
        turns.append(("system", system, "system"))
    history = row.get("history") or []
    if not isinstance(history, list):
        raise _row_error("expected_pairs", "history", type=type(history).__name__)
    for i, pair in enumerate(history):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise _row_error("expected_pair", f"history[{i}]")
        turns += [("user", pair[0], f"history[{i}][0]"), ("assistant", pair[1], f"history[{i}][1]")]
    instruction = _text(row, "instruction")
    extra = _text(row, "input", required=False)
    # Same joining as LLaMA-Factory / Stanford Alpaca: the input follows the instruction on a new line.
    prompt = f"{instruction}\n{extra}" if instruction and extra else instruction or extra
    turns.append(("user", prompt, "instruction"))
    turns.append(("assistant", _text(row, "output"), "output"))
    return turns


def _role_content(row: dict, key: str, role_key: str, text_key: str, role_map: dict[str, str]) -> Turns:
    turns: Turns = []
    for i, item in enumerate(_list(row, key)):
        item = _obj(item, f"{key}[{i}]")
        raw_role = _text(item, role_key, f"{key}[{i}].{role_key}")
        if raw_role not in role_map:
            raise _row_error("unknown_speaker", f"{key}[{i}].{role_key}", role=repr(raw_role), roles=str(sorted(role_map)))
        turns.append((role_map[raw_role], _text(item, text_key, f"{key}[{i}].{text_key}"), f"{key}[{i}].{text_key}"))
    return turns


def _openai(row: dict) -> Turns:
    return _role_content(row, "messages", "role", "content", {r: r for r in ROLES})


def _chatglm(row: dict) -> Turns:
    return _role_content(row, "conversations", "role", "content", {r: r for r in ROLES})


def _sharegpt(row: dict) -> Turns:
    turns = _role_content(row, "conversations", "from", "value", SHAREGPT_ROLES)
    system = _text(row, "system", required=False)
    return ([("system", system, "system")] if system else []) + turns


def _xtuner(row: dict) -> Turns:
    turns: Turns = []
    for i, item in enumerate(_list(row, "conversation")):
        item = _obj(item, f"conversation[{i}]")
        system = _text(item, "system", f"conversation[{i}].system", required=False)
        if system:
            turns.append(("system", system, f"conversation[{i}].system"))
        turns.append(("user", _text(item, "input", f"conversation[{i}].input"), f"conversation[{i}].input"))
        turns.append(("assistant", _text(item, "output", f"conversation[{i}].output"), f"conversation[{i}].output"))
    return turns


def _competition(row: dict) -> Turns:
    q_key = "input" if "input" in row else "question"
    a_key = "output" if "output" in row or "answer" not in row else "answer"
    return [("user", _text(row, q_key), q_key), ("assistant", _text(row, a_key), a_key)]


def _context(row: dict) -> Turns:
    return [("user", _text(row, "Context"), "Context"), ("assistant", _text(row, "Response"), "Response")]


PARSERS: dict[str, Callable[[dict], Turns]] = {
    "alpaca": _alpaca, "openai": _openai, "sharegpt": _sharegpt, "chatglm": _chatglm,
    "xtuner": _xtuner, "competition": _competition, "context": _context,
}


def detect_format(row: dict) -> str | None:
    """The row format a dict looks like, or None. Order matters: alpaca rows also have "input"/"output"."""
    if "messages" in row:
        return "openai"
    if "conversation" in row:
        return "xtuner"
    if "conversations" in row:
        first = row["conversations"][0] if isinstance(row["conversations"], list) and row["conversations"] else {}
        return "sharegpt" if isinstance(first, dict) and "from" in first else "chatglm"
    if "instruction" in row:
        return "alpaca"
    if ("input" in row and "output" in row) or ("question" in row and "answer" in row):
        return "competition"
    if "Context" in row and "Response" in row:
        return "context"
    return None


def to_conversation(turns: Turns, line: int) -> Conversation:
    """Checks the turn order every chat template expects: [system] user assistant (user assistant)*."""
    messages = []
    for i, (role, content, path) in enumerate(turns):
        if not content.strip():
            raise _row_error("empty_text", path)
        if role == "system" and i != 0:
            raise _row_error("system_not_first", path)
        messages.append(Message(role, content))
    dialog = [m for m in messages if m.role != "system"]
    for i, m in enumerate(dialog):
        expected = "user" if i % 2 == 0 else "assistant"
        if m.role != expected:
            path = [p for r, _, p in turns if r != "system"][i]
            raise _row_error("turn_order", path, expected=expected, got=m.role)
    if not dialog or dialog[-1].role != "assistant":
        raise _row_error("no_final_answer", turns[-1][2] if turns else "")
    return Conversation(tuple(messages), line)


# ---------------------------------------------------------------------------------------------------------------
# File reader: safeio.records, shared with evaluation/; yields (line, row dict) or (line, ProblemError) for a row that
# cannot be read at all.

RawRows = Iterator[tuple[int, "dict | ProblemError"]]
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".xlsx", ".xlsm")


def read_rows(path: Path, column_map: dict[str, str] | None = None, limits: Limits | None = None) -> RawRows:
    """Rows of a training data file; a table's columns named in column_map (field -> column) must exist."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise _data_error(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv or .xlsx)",
                          "unsupported_type", path, suffix=suffix, name=path.name)
    records = read_records(path, limits, sheets=True, columns=column_map)
    return ((line, _read_error(row) if isinstance(row, SafeReadError) else row)
            for line, row in records)


def _read_error(err: SafeReadError) -> ProblemError:
    """A row the bounded reader refused, as a row problem with the reader's own code and params; its English
    sentence is the reader's (`message`), the other languages read the code."""
    params = dict(getattr(err, "params", None) or {})
    return ProblemError(params.pop("say", "") or err.kind, err.field, kind=err.kind, said=err.reason, **params)


# ---------------------------------------------------------------------------------------------------------------


def load_data(
    path: str | Path,
    data_format: str = "auto",
    column_map: dict[str, str] | None = None,
    max_samples: int = 0,
    dedup: bool = True,
    limits: Limits | None = None,
) -> LoadResult:
    """Read a data file into conversations. Every row that is not kept is in `rejected` with its line and reason.
    The file is read within `limits` (default: the ones in force, safeio.current()); a refusal is a DataError."""
    path = Path(path)
    try:
        return _load(path, data_format, column_map, max_samples, dedup, limits)
    except SafeReadError as exc:  # a limit hit, or a file that is not what it claims: one message, file and line
        raise DataError(str(exc), from_read_error(exc)) from None


def _load(path: Path, data_format: str, column_map: dict[str, str] | None, max_samples: int, dedup: bool,
          limits: Limits | None) -> LoadResult:
    check_file(path, limits)
    if data_format != "auto" and data_format not in FORMATS:
        raise _data_error(f"{path}: unknown format {data_format!r} (expected auto or one of {', '.join(FORMATS)})",
                          "unknown_format", path, format=data_format, formats=", ".join(FORMATS))
    result = LoadResult(file=str(path), format=data_format)
    seen: dict[str, int] = {}
    for line, row in read_rows(path, column_map, limits):
        result.total_rows += 1
        try:
            if isinstance(row, ProblemError):
                raise row
            if column_map:
                row = _rename(row, column_map)
            if result.format == "auto":
                result.format = detect_format(row) or "auto"
                if result.format == "auto":
                    raise _data_error(
                        f"{path}:{line}: cannot tell the data format from the fields {names_text(sorted(row))}; "
                        f"expected one of {', '.join(FORMATS)} (see `python -m finetune preview --help`), or map "
                        "columns with column_map", "unknown_data_format", path, line,
                        fields=names_text(sorted(row)), formats=", ".join(FORMATS))
            conversation = to_conversation(PARSERS[result.format](row), line)
        except ProblemError as exc:
            result.rejected.append(exc.at(line, file=str(path)))
            continue
        key = hashlib.sha1(json.dumps(conversation.as_dicts(), ensure_ascii=False).encode()).hexdigest()
        if dedup and key in seen:
            result.duplicates += 1
            result.rejected.append(Problem(line, None, "duplicate_row", f"duplicate of line {seen[key]}",
                                           file=str(path), params={"first": seen[key]}, say="duplicate_of"))
            continue
        seen.setdefault(key, line)
        if max_samples and len(result.conversations) >= max_samples:
            result.dropped_by_max_samples += 1
            continue
        result.conversations.append(conversation)
    if result.format == "auto":
        raise _data_error(f"{path}: no readable row" + (f" (first problem: {result.rejected[0]})" if result.rejected
                                                         else ""), "no_readable_row", path, rows=result.total_rows)
    return result


def _rename(row: dict, column_map: dict[str, str]) -> dict:
    """column_map is target field -> name in the file, as for tables."""
    reverse = {source: target for target, source in column_map.items()}
    return {reverse.get(k, k): v for k, v in row.items()}


def split_conversations(
    conversations: list[Conversation], val_split: float, seed: int
) -> tuple[list[Conversation], list[Conversation]]:
    """Seeded shuffle, then the validation share off the end: a fraction below 1, or a row count from 1 up."""
    order = list(conversations)
    random.Random(seed).shuffle(order)
    n_val = int(val_split) if val_split >= 1 else int(round(len(order) * val_split))
    n_val = min(n_val, max(0, len(order) - 1))  # never leave training empty
    return order[n_val:], order[:n_val]


def parse_column_map(text: str) -> dict[str, str]:
    """'instruction=问题, output=回答' or a JSON object -> {"instruction": "问题", "output": "回答"}."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _data_error(f"column_map: not valid JSON ({exc.msg})", "column_map_json") from None
    else:
        mapping = {}
        for part in text.replace("，", ",").split(","):
            if "=" not in part:
                raise _data_error(f"column_map: {part.strip()!r} is not field=column", "column_map_entry",
                                  part=part.strip()[:60])
            target, source = part.split("=", 1)
            mapping[target.strip()] = source.strip()
    if not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in mapping.items()):
        raise _data_error("column_map: every entry must map a field name to a column name", "column_map_names")
    return mapping
