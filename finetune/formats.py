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

from safeio import (
    Limits, SafeReadError, check_file, iter_csv, iter_json_array, iter_lines, iter_xlsx, json_loads, read_bytes,
    single_object,
)

FORMATS = ("alpaca", "openai", "sharegpt", "chatglm", "xtuner", "competition", "context")
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class DataError(ValueError):
    """A data file that cannot be used at all (unreadable, unknown format, no valid row). Names the file and line."""


class RowError(ValueError):
    """One row rejected; `field` is the JSON path of the offending value (e.g. "messages[2].content")."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"field '{field}': {reason}" if field else reason)
        self.field = field
        self.reason = reason


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


@dataclass(frozen=True)
class Rejected:
    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: field '{self.field}': {self.reason}" if self.field else f"{where}: {self.reason}"


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
# Field helpers: each raises RowError naming the field.


def _text(row: dict, key: str, path: str | None = None, required: bool = True) -> str:
    path = path or key
    if key not in row or row[key] is None:
        if required:
            raise RowError(path, "missing")
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise RowError(path, f"expected a string, got {type(value).__name__} ({json.dumps(value, ensure_ascii=False)[:40]})")
    return value


def _list(row: dict, key: str) -> list:
    if key not in row:
        raise RowError(key, "missing")
    value = row[key]
    if not isinstance(value, list):
        raise RowError(key, f"expected a list, got {type(value).__name__}")
    if not value:
        raise RowError(key, "empty list")
    return value


def _obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise RowError(path, f"expected an object, got {type(value).__name__}")
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
        raise RowError("history", f"expected a list of [question, answer] pairs, got {type(history).__name__}")
    for i, pair in enumerate(history):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise RowError(f"history[{i}]", "expected a [question, answer] pair of strings")
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
            raise RowError(f"{key}[{i}].{role_key}", f"unknown role {raw_role!r} (expected one of {sorted(role_map)})")
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
            raise RowError(path, "empty text")
        if role == "system" and i != 0:
            raise RowError(path, "a system message is only allowed first")
        messages.append(Message(role, content))
    dialog = [m for m in messages if m.role != "system"]
    for i, m in enumerate(dialog):
        expected = "user" if i % 2 == 0 else "assistant"
        if m.role != expected:
            path = [p for r, _, p in turns if r != "system"][i]
            raise RowError(path, f"expected a {expected} turn here, got {m.role} (turns must alternate user/assistant)")
    if not dialog or dialog[-1].role != "assistant":
        raise RowError(turns[-1][2] if turns else "", "the conversation must end with an assistant answer")
    return Conversation(tuple(messages), line)


# ---------------------------------------------------------------------------------------------------------------
# File readers: yield (line, row dict) or (line, RowError) for rows that are not objects at all.

RawRows = Iterator[tuple[int, "dict | RowError"]]


def _decode_line(raw: bytes, lineno: int) -> str:
    try:
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        hint = ""
        try:
            raw.decode("gb18030")
            hint = "; it looks like GBK/GB18030: save the file as UTF-8"
        except UnicodeDecodeError:
            pass
        raise RowError("", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}){hint}") from None


def read_jsonl(path: Path, limits: Limits | None = None) -> RawRows:
    """Line by line, never the whole file: a line over the limit is a rejected row, its bytes skipped unread."""
    checked_single = False
    for lineno, raw in iter_lines(path, limits):
        try:
            if isinstance(raw, SafeReadError):
                raise RowError("", raw.reason)
            text = _decode_line(raw, lineno).strip()
            if not text:
                continue
            try:
                row = json_loads(text, path, lineno, limits)
            except json.JSONDecodeError as exc:
                if not checked_single and text.startswith("{"):
                    checked_single = True  # line 1 of a pretty-printed object: say that, not "broken JSON" x N
                    whole = single_object(path, limits)
                    if whole is not None:
                        raise DataError(str(whole)) from None
                raise RowError("", f"broken JSON ({exc.msg} at column {exc.colno})") from None
            except SafeReadError as exc:
                raise RowError(exc.field, exc.reason) from None
            checked_single = True
            yield lineno, row if isinstance(row, dict) else _not_object(row)
        except RowError as exc:
            yield lineno, exc


def _not_object(value) -> RowError:
    return RowError("", f"expected a JSON object, got {type(value).__name__}")


def _decode_whole(path: Path, raw: bytes, fix: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte offset {exc.start}); {fix}") from None


def read_json_array(path: Path, limits: Limits | None = None) -> RawRows:
    """A JSON array, item by item with its line number (raw_decode keeps the offsets that json.load throws away)."""
    text = _decode_whole(path, read_bytes(path, limits), "save the file as UTF-8")
    try:
        for line, row in iter_json_array(text, path, limits):
            yield line, row if isinstance(row, dict) else _not_object(row)
    except json.JSONDecodeError as exc:
        # After a syntax error inside an array the rest cannot be located reliably: report it and stop.
        raise DataError(f"{path}:{exc.lineno}: broken JSON ({exc.msg} at column {exc.colno})") from None


def _names(names) -> str:
    """Column or field names for a message: a 20,000-column header must not become a 189 KB message."""
    names = [str(n)[:40] for n in names]
    return repr(names[:20])[:-1] + (f", ... {len(names) - 20} more]" if len(names) > 20 else "]")


def _table_rows(header: list, rows: Iterator[tuple[int, list]], column_map: dict[str, str], path: Path) -> RawRows:
    header = [str(h).strip() if h is not None else "" for h in header]
    for target, column in column_map.items():
        if column not in header:
            raise DataError(f"{path}:1: column_map['{target}']: no column named {column!r} (columns: {_names(header)})")
    rename = {column: target for target, column in column_map.items()}
    for line, values in rows:
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        row = {}
        for name, value in zip(header, values):
            if name:
                # Spreadsheet cells come back as numbers or dates: a table has no types, so every cell is text here.
                row[rename.get(name, name)] = "" if value is None else str(value)
        yield line, row


def read_csv(path: Path, column_map: dict[str, str], limits: Limits | None = None) -> RawRows:
    text = _decode_whole(path, read_bytes(path, limits), "save the CSV as UTF-8 (Excel: 'CSV UTF-8')")
    rows = iter_csv(text, path, limits, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: empty file")
    yield from _table_rows(first[1], rows, column_map, path)


def read_xlsx(path: Path, column_map: dict[str, str], limits: Limits | None = None) -> RawRows:
    rows = iter_xlsx(path, limits)  # zip parts, rows, columns and cells bounded; the real extent of the sheet
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: empty sheet")
    yield from _table_rows(first[1], rows, column_map, path)


def read_rows(path: Path, column_map: dict[str, str] | None = None, limits: Limits | None = None) -> RawRows:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_csv(path, column_map or {}, limits)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, column_map or {}, limits)
    if suffix == ".json":
        check_file(path, limits)
        with path.open("rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"["):
            return read_json_array(path, limits)
    if suffix not in (".json", ".jsonl"):
        raise DataError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv or .xlsx)")
    return read_jsonl(path, limits)


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
        raise DataError(str(exc)) from None


def _load(path: Path, data_format: str, column_map: dict[str, str] | None, max_samples: int, dedup: bool,
          limits: Limits | None) -> LoadResult:
    check_file(path, limits)
    if data_format != "auto" and data_format not in FORMATS:
        raise DataError(f"{path}: unknown format {data_format!r} (expected auto or one of {', '.join(FORMATS)})")
    result = LoadResult(file=str(path), format=data_format)
    seen: dict[str, int] = {}
    is_table = path.suffix.lower() in (".csv", ".tsv", ".xlsx", ".xlsm")
    for line, row in read_rows(path, column_map, limits):
        result.total_rows += 1
        try:
            if isinstance(row, RowError):
                raise row
            if column_map and not is_table:
                row = _rename(row, column_map)
            if result.format == "auto":
                result.format = detect_format(row) or "auto"
                if result.format == "auto":
                    raise DataError(
                        f"{path}:{line}: cannot tell the data format from the fields {_names(sorted(row))}; "
                        f"expected one of {', '.join(FORMATS)} (see `python -m finetune preview --help`), or map "
                        "columns with column_map"
                    )
            conversation = to_conversation(PARSERS[result.format](row), line)
        except RowError as exc:
            result.rejected.append(Rejected(str(path), line, exc.field, exc.reason))
            continue
        key = hashlib.sha1(json.dumps(conversation.as_dicts(), ensure_ascii=False).encode()).hexdigest()
        if dedup and key in seen:
            result.duplicates += 1
            result.rejected.append(Rejected(str(path), line, "", f"duplicate of line {seen[key]}"))
            continue
        seen.setdefault(key, line)
        if max_samples and len(result.conversations) >= max_samples:
            result.dropped_by_max_samples += 1
            continue
        result.conversations.append(conversation)
    if result.format == "auto":
        raise DataError(f"{path}: no readable row" + (f" (first problem: {result.rejected[0]})" if result.rejected else ""))
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
            raise DataError(f"column_map: not valid JSON ({exc.msg})") from None
    else:
        mapping = {}
        for part in text.replace("，", ",").split(","):
            if "=" not in part:
                raise DataError(f"column_map: {part.strip()!r} is not field=column")
            target, source = part.split("=", 1)
            mapping[target.strip()] = source.strip()
    if not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in mapping.items()):
        raise DataError("column_map: every entry must map a field name to a column name")
    return mapping
