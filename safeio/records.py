"""The one reader of data files as records: JSON Lines, a JSON array, CSV/TSV and (for training data) .xlsx, each
record a dict with the line it starts on, read within safeio.Limits. Training data (finetune/formats.py),
evaluation sets, references and predictions (evaluation/data.py) all come through here, so a file reads the same
everywhere: UTF-8 with or without BOM, and a GBK/GB18030 file named as such with the line of its first bad byte.

    for line, record in read_records(path):   # record: a dict, or a SafeReadError for that line alone
        ...

A problem with one line (broken JSON, a line over the limit, not an object, too many cells) comes in that line's
place, so the caller can report it and go on; a problem with the file as a whole raises SafeReadError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from safeio.errors import NotUtf8, SafeReadError
from safeio.limits import Limits
from safeio.readers import check_file, iter_csv, iter_json_array, iter_lines, iter_xlsx, json_loads, read_bytes, \
    single_object

Record = tuple[int, "dict[str, Any] | SafeReadError"]
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
SHEET_SUFFIXES = (".xlsx", ".xlsm")


def decode(raw: bytes, path, first_line: int = 1) -> str:
    """UTF-8 text (a BOM dropped on line 1, line ends made LF); anything else is an "encoding" SafeReadError at
    the line of the first undecodable byte (NotUtf8), naming GBK/GB18030 when the bytes read as that."""
    try:
        text = raw.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as err:
        line = first_line + raw[: err.start].count(b"\n")
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        hint = ""
        try:
            raw.decode("gb18030")
            hint = "; it looks like GBK/GB18030 (common from Excel or Windows tools in Chinese)"
        except UnicodeDecodeError:
            pass
        raise NotUtf8(path, line, "", f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at line {line}, column "
                                            f"{column}){hint}: save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def file_kind(path, sheets: bool = False) -> str:
    """"csv", "tsv", "xlsx", "json_array" or "jsonl": by the suffix, then by the first byte (a JSON array)."""
    suffix = Path(path).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return suffix[1:]
    if sheets and suffix in SHEET_SUFFIXES:
        return "xlsx"
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json_array" if head.startswith(b"[") else "jsonl"


def read_records(path, limits: Limits | None = None, sheets: bool = False,
                 columns: dict[str, str] | None = None) -> Iterator[Record]:
    """(line, record) of a data file. `sheets` reads .xlsx workbooks too (else a workbook is refused as not text);
    `columns` (field -> column name) are the columns a table must have (a missing one is named at line 1)."""
    check_file(path, limits)
    kind = file_kind(path, sheets)
    if kind in ("csv", "tsv"):
        text = decode(read_bytes(path, limits), path)
        if not text.strip():
            raise SafeReadError(path, None, "", "the file is empty", "empty_file")
        return _table(iter_csv(text, path, limits, delimiter=TABLE_SUFFIXES[f".{kind}"]), path, columns)
    if kind == "xlsx":
        return _table(iter_xlsx(path, limits), path, columns)
    if kind == "json_array":
        return _json_array(path, limits)
    return _jsonl(path, limits)


def _jsonl(path, limits: Limits | None) -> Iterator[Record]:
    """Line by line (safeio.iter_lines): a line over the limit is a problem on that line, its bytes never held."""
    first = True
    for number, raw in iter_lines(path, limits):
        if isinstance(raw, SafeReadError):
            yield number, raw
            continue
        try:
            line = decode(raw, path, number)
        except SafeReadError as err:
            yield number, err
            continue
        if not line.strip():
            continue
        try:
            value = json_loads(line, path, number, limits)
        except json.JSONDecodeError as err:
            whole = single_object(path, limits) if first else None
            if whole is not None:  # a pretty-printed object: one clear problem, not "broken JSON" on every line
                raise whole from None
            value = SafeReadError(path, number, "", f"broken JSON ({err.msg} at column {err.colno})", "bad_json",
                                  params={"column": err.colno})
        except SafeReadError as err:
            value = err
        first = False
        yield number, _object(value, path, number)


def _json_array(path, limits: Limits | None) -> Iterator[Record]:
    """Item by item with its line (raw_decode keeps the offsets that json.load throws away). After a syntax error
    inside an array the rest cannot be located reliably: that raises, for the file as a whole."""
    text = decode(read_bytes(path, limits), path)
    try:
        for line, value in iter_json_array(text, path, limits):
            yield line, _object(value, path, line)
    except json.JSONDecodeError as err:
        raise SafeReadError(path, err.lineno, "", f"broken JSON ({err.msg} at column {err.colno}); the file must be "
                                                  "one JSON array of objects, or JSON Lines", "bad_json",
                                  params={"column": err.colno}) from None


def _object(value: Any, path, line: int) -> dict | SafeReadError:
    if isinstance(value, (dict, SafeReadError)):
        return value
    return SafeReadError(path, line, "", f"expected a JSON object, got {type(value).__name__}", "not_object",
                         params={"type": type(value).__name__})


def names_text(names) -> str:
    """Column or field names for a message: a 20,000-column header must not become a 189 KB message."""
    names = [str(n)[:40] for n in names]
    return repr(names[:20])[:-1] + (f", ... {len(names) - 20} more]" if len(names) > 20 else "]")


def _table(rows: Iterator[tuple[int, list]], path, columns: dict[str, str] | None) -> Iterator[Record]:
    """Records of a table: the first row names the fields. Every cell is text (a sheet's numbers and dates too:
    a table has no types); a cell the row does not reach is None, i.e. missing, and a nameless column is dropped."""
    first = next(rows, None)
    if first is None:
        raise SafeReadError(path, None, "", "the file is empty", "empty_file")
    header = [str(h).strip() if h is not None else "" for h in first[1]]
    for field, column in (columns or {}).items():
        if column not in header:
            raise SafeReadError(path, 1, "", f"column_map['{field}']: no column named {column!r} (columns: "
                                             f"{names_text(header)})", "missing_column",
                                params={"column": column, "target": field})
    for line, values in rows:
        if all(v is None or str(v).strip() == "" for v in values):
            continue  # a blank line, or a sheet row formatted but empty
        if len(values) > len(header):
            yield line, SafeReadError(path, line, "", "more cells than the header has columns; quote cells that "
                                                      "contain commas", "bad_csv",
                                      params={"say": "csv_extra_cells"})
            continue
        values = ["" if v is None else str(v) for v in values] + [None] * (len(header) - len(values))
        yield line, {name: value for name, value in zip(header, values) if name}
