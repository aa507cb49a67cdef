"""Bounded openers: every user data file is checked (kind of file, size, encoding) and then read within
safeio.Limits, so that no single line, field, cell, row count or zip part can make the reader use more than a
bounded amount of memory. Refusals are SafeReadError / LimitExceeded naming file, line (or sheet row) and field."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import zipfile
import zlib
from functools import partial
from itertools import accumulate
from typing import Any, Iterator

from safeio.errors import LimitExceeded, SafeReadError
from safeio.limits import Limits, current, describe, flag_of

CHUNK = 1 << 20  # bytes read at a time: lines are assembled from chunks, never read whole by readline()
_BRACKETS = re.compile(r"[\[\]{}]")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled loop: linear, no backtracking
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def over(path, line, field: str, what: str, name: str, limits: Limits) -> LimitExceeded:
    """One refusal text for every limit: what was found, the limit, and the flag / variable that raises it."""
    value = describe(name, getattr(limits, name))
    return LimitExceeded(path, line, field, f"{what}, over the limit of {value} ({flag_of(name)})",
                         params={"value": value, "flag": flag_of(name), "limit": name})


# ---------------------------------------------------------------------------------------------------------------
# The file itself


def check_file(path, limits: Limits | None = None) -> int:
    """A regular file within max_bytes, or SafeReadError. Never opens it: opening a FIFO would block."""
    limits = limits or current()
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SafeReadError(path, None, "", "file not found", "missing_file") from None
    except OSError as exc:
        raise SafeReadError(path, None, "", f"cannot be read ({exc.strerror})", "missing_file") from None
    if stat.S_ISDIR(info.st_mode):
        raise SafeReadError(path, None, "", "is a directory, not a data file", "not_a_file")
    if not stat.S_ISREG(info.st_mode):
        raise SafeReadError(path, None, "", "is not a regular file (a FIFO, device or socket); give a data file",
                            "not_a_file")
    if info.st_size > limits.max_bytes:
        raise over(path, None, "", f"the file is {info.st_size:,} bytes", "max_bytes", limits)
    return info.st_size


def check_text_head(path, head: bytes) -> None:
    """Encodings that UTF-8 decoding would report badly or not at all: UTF-16/32 (with or without BOM), binary."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise SafeReadError(path, 1, "", "the file is UTF-32; save it as UTF-8", "encoding",
                            params={"say": "utf32"})
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SafeReadError(path, 1, "", "the file is UTF-16 (Excel's 'Unicode text'); save it as UTF-8 "
                                         "(Excel: 'CSV UTF-8')", "encoding", params={"say": "utf16"})
    if head.startswith(b"PK\x03\x04"):
        raise SafeReadError(path, None, "", "a zip archive (an .xlsx workbook?), not text: save it as CSV UTF-8 or "
                                            "JSON Lines", "encoding", params={"say": "zip_not_text"})
    nul = head.find(b"\x00")
    if nul < 0:
        return
    sample = head[:4096]
    # ASCII text in UTF-16 has a NUL in every other byte; binary data has them scattered.
    if sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4:
        raise SafeReadError(path, 1, "", "the file looks like UTF-16 without a byte-order mark; save it as UTF-8",
                            "encoding", params={"say": "utf16"})
    line = head[:nul].count(b"\n") + 1
    raise SafeReadError(path, line, "", f"a NUL byte at byte {nul + 1}: this is a binary file, not text "
                                        "(JSONL, JSON or CSV)", "encoding",
                        params={"say": "binary", "byte": nul + 1})


def read_bytes(path, limits: Limits | None = None) -> bytes:
    """The whole file (at most max_bytes), for formats parsed as a whole (a JSON array, CSV)."""
    limits = limits or current()
    size = check_file(path, limits)
    with open(path, "rb") as f:
        raw = f.read(size)  # read(n) allocates n bytes up front: the file's size, never the limit
        if f.read(1):
            raise SafeReadError(path, None, "", "the file grew while it was read; try again when it is complete",
                                params={"say": "file_grew"})
    check_text_head(path, raw[:CHUNK])
    return raw


# ---------------------------------------------------------------------------------------------------------------
# JSON Lines


def iter_lines(path, limits: Limits | None = None) -> Iterator[tuple[int, "bytes | LimitExceeded"]]:
    """(line number, raw line without its end) for every line; a line over max_line_bytes comes as a LimitExceeded
    in its place (its bytes are skipped, never held), so the reader can report it and go on. LF, CRLF and CR-only
    line ends (old Mac exports) all count as line ends. More than max_rows non-blank lines raises."""
    limits = limits or current()
    check_file(path, limits)
    with open(path, "rb") as f:
        first = f.read(CHUNK)
        check_text_head(path, first)
        # A CR-only file has no LF at all; a JSON string cannot hold a raw CR or LF, so splitting there is safe.
        sep = b"\r" if b"\n" not in first and b"\r" in first else b"\n"
        rows = 0
        for number, line in enumerate(_split(f, first, sep, limits.max_line_bytes), start=1):
            if line is None:
                yield number, over(path, number, "", "the line is too long", "max_line_bytes", limits)
                continue
            line = line[:-1] if line.endswith(b"\r") else line
            if line.strip():
                rows += 1
                if rows > limits.max_rows:
                    raise over(path, number, "", f"more than {limits.max_rows:,} rows", "max_rows", limits)
            yield number, line


def _split(f, chunk: bytes, sep: bytes, max_len: int) -> Iterator[bytes | None]:
    """Lines of a binary file; None for a line longer than max_len, whose bytes are dropped as they come."""
    pending, too_long = bytearray(), False
    while chunk:
        parts = chunk.split(sep)
        for i, part in enumerate(parts):
            if not too_long:
                pending += part
                if len(pending) > max_len:
                    too_long = True
                    pending = bytearray()
            if i < len(parts) - 1:  # a separator follows: the line is complete
                yield None if too_long else bytes(pending)
                pending, too_long = bytearray(), False
        chunk = f.read(CHUNK)
    if too_long or pending:
        yield None if too_long else bytes(pending)


# ---------------------------------------------------------------------------------------------------------------
# JSON values


def json_loads(text: str, path, line: int | None, limits: Limits | None = None) -> Any:
    """json.loads within max_json_depth and max_int_digits, every string within max_field_chars and valid Unicode.
    json.JSONDecodeError passes through (each reader words broken JSON its own way)."""
    limits = limits or current()
    check_depth(text, path, line, limits)
    try:
        value = json.loads(text, parse_int=partial(_parse_int, path=path, line=line, limits=limits))
    except RecursionError:  # a nesting the bracket count missed (cannot happen; kept as the backstop)
        raise over(path, line, "", "JSON nested too deep", "max_json_depth", limits) from None
    check_strings(value, text, path, line, limits)
    return value


def check_depth(text: str, path, line: int | None, limits: Limits) -> None:
    """Deep nesting makes json's C parser recurse (RecursionError, or a crash); count brackets outside strings
    first. Few brackets cannot nest deep, so the usual row costs two str.count calls."""
    if text.count("[") + text.count("{") <= limits.max_json_depth:
        return
    brackets = _BRACKETS.findall(_JSON_STRING.sub('""', text))
    deepest = max(accumulate(1 if b in "[{" else -1 for b in brackets), default=0)
    if deepest > limits.max_json_depth:
        raise over(path, line, "", f"JSON nested {deepest} levels deep", "max_json_depth", limits)


def _parse_int(digits: str, path, line, limits: Limits) -> int:
    if len(digits.lstrip("-")) > limits.max_int_digits:
        raise over(path, line, "", f"an integer of {len(digits.lstrip('-')):,} digits", "max_int_digits", limits)
    return int(digits)


def check_strings(value: Any, text: str, path, line: int | None, limits: Limits, base: str = "") -> None:
    """Every string (keys too) within max_field_chars and free of lone surrogates, which json accepts as \\ud800
    but which cannot be printed or written as UTF-8. Skipped when the text shows neither can occur."""
    long_possible = len(text) > limits.max_field_chars
    if not long_possible and not _ESCAPED_SURROGATE.search(text):
        return
    stack = [(value, base)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if len(item) > limits.max_field_chars:
                raise over(path, line, where, f"{len(item):,} characters", "max_field_chars", limits)
            if _SURROGATE.search(item):
                raise SafeReadError(path, line, where, "a lone surrogate (\\ud800-\\udfff escape): not valid "
                                                       "Unicode text", "encoding", params={"say": "surrogate"})
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    raise SafeReadError(path, line, where, "a field name holds a lone surrogate: not valid Unicode",
                                        "encoding", params={"say": "surrogate"})
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack += [(child, f"{where}[{i}]") for i, child in enumerate(item)]


def iter_json_array(text: str, path, limits: Limits | None = None) -> Iterator[tuple[int, Any]]:
    """(line where it starts, value) for each item of the top-level array in `text`, checked like json_loads.
    Broken JSON raises json.JSONDecodeError; more than max_rows items raises LimitExceeded."""
    limits = limits or current()
    check_depth(text, path, None, limits)
    decoder = json.JSONDecoder(parse_int=partial(_parse_int, path=path, line=None, limits=limits))
    pos = text.index("[") + 1
    line, counted_to, rows = 1, 0, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        line += text.count("\n", counted_to, pos)  # counted incrementally: a big array stays linear
        counted_to = pos
        rows += 1
        if rows > limits.max_rows:
            raise over(path, line, "", f"more than {limits.max_rows:,} items", "max_rows", limits)
        try:
            value, end = decoder.raw_decode(text, pos)
        except LimitExceeded as exc:
            raise LimitExceeded(path, line, exc.field, exc.reason, params=exc.params) from None
        check_strings(value, text[pos:end], path, line, limits)
        pos = end
        yield line, value


def single_object(path, limits: Limits | None = None) -> SafeReadError | None:
    """The error for a file that is one JSON object written over several lines (a pretty-printed row, or a
    {"data": [...]} wrapper) instead of rows; None if it is not that. Called when line 1 is not valid JSON. Such a
    file is one JSON value, so it is looked at only within the line limit (a bigger one is refused as a long line)."""
    limits = limits or current()
    if check_file(path, limits) > limits.max_line_bytes:
        return None
    text = read_bytes(path, limits).decode("utf-8-sig", "replace")
    if not text.lstrip().startswith("{") or text.count("\n") < 1:
        return None
    try:
        value = json_loads(text, path, None, limits)
    except (ValueError, SafeReadError):
        return None
    if not isinstance(value, dict):
        return None
    keys = ", ".join(str(k)[:40] for k in list(value)[:8])
    return SafeReadError(path, 1, "", f"the file is one JSON object over several lines (fields: {keys}), not rows: "
                                      "write one object per line (JSONL) or an array [ {...}, {...} ]", "bad_json",
                         params={"say": "one_object", "keys": keys})


# ---------------------------------------------------------------------------------------------------------------
# CSV


def iter_csv(text: str, path, limits: Limits | None = None, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, values) for every record, the header included."""
    limits = limits or current()
    # Process-wide, but every reader of this process uses the limits in force, so it is the same value.
    csv.field_size_limit(limits.max_field_chars)
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, delimiter=delimiter)
    start, rows, offset = 1, 0, 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise over(path, start, "", "a value is too long", "max_field_chars", limits) from None
            raise SafeReadError(path, start, "", f"not valid CSV ({exc})", "bad_csv") from None
        if len(values) > limits.max_columns:
            raise over(path, start, "", f"{len(values):,} columns", "max_columns", limits)
        rows += 1
        if rows > limits.max_rows + 1:  # + the header
            raise over(path, start, "", f"more than {limits.max_rows:,} rows", "max_rows", limits)
        record_end = stream.tell()
        if record_end >= len(text) and _unclosed_quote(text[offset:record_end], delimiter):
            # The csv module silently takes an unclosed quote to the end of the file: the rest becomes one value.
            raise SafeReadError(path, start, "", "a quote opened on this line is never closed (the rest of the file "
                                                 "would be one value); close it, or double a quote inside a value "
                                                 '("")', "bad_csv", params={"say": "csv_unclosed_quote"})
        yield start, values
        start, offset = reader.line_num + 1, record_end


def _unclosed_quote(record: str, delimiter: str) -> bool:
    """The last record, re-read strictly: only an open quote reaches the end of the data."""
    if record.count('"') % 2 == 0:
        return False
    try:
        list(csv.reader(io.StringIO(record, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


# ---------------------------------------------------------------------------------------------------------------
# XLSX


def check_xlsx(path, limits: Limits | None = None) -> None:
    """An .xlsx is a zip of XML parts that openpyxl inflates and parses. Before openpyxl sees it: each part's
    declared uncompressed size and their sum within the limits, then each part inflated as a stream (bounded memory)
    to verify that what it holds matches what it declares (zipfile stops at the declared size; a mismatch fails
    the CRC), so a tampered header cannot smuggle a bigger part in."""
    limits = limits or current()
    check_file(path, limits)
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise SafeReadError(path, None, "", "not an .xlsx workbook (an .xlsx is a zip archive; this file is not "
                                                "one). Save it from Excel as .xlsx, or as CSV UTF-8", "bad_xlsx")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SafeReadError(path, None, "", f"a damaged or truncated .xlsx (zip: {exc})", "bad_xlsx") from None
    with archive:
        infos = archive.infolist()
        total = 0
        for info in infos:
            if info.file_size > limits.max_xlsx_part_bytes:
                raise over(path, None, info.filename, f"the part inflates to {info.file_size:,} bytes",
                           "max_xlsx_part_bytes", limits)
            total += info.file_size
            if total > limits.max_xlsx_total_bytes:
                raise over(path, None, info.filename, f"the parts inflate to more than {total:,} bytes",
                           "max_xlsx_total_bytes", limits)
        for info in infos:
            _inflate_counting(archive, info, path)


def _inflate_counting(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> None:
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                size += len(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise SafeReadError(path, None, info.filename, f"a damaged part of the .xlsx ({exc})", "bad_xlsx") from None
    if size != info.file_size:
        raise SafeReadError(path, None, info.filename, f"the part holds {size:,} bytes but declares "
                                                       f"{info.file_size:,} (a damaged or tampered .xlsx)", "bad_xlsx")


def iter_xlsx(path, limits: Limits | None = None) -> Iterator[tuple[int, list]]:
    """(sheet row number, cell values) of the active sheet, every row to the real end of the sheet: the
    <dimension> tag that openpyxl would trust is ignored (a wrong one would read 300,000 rows as 6)."""
    limits = limits or current()
    check_xlsx(path, limits)
    import openpyxl  # only here: reading a JSONL file should not pay for openpyxl's import

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises zip, XML, key and value errors for broken workbooks
        raise SafeReadError(path, None, "", f"not a readable .xlsx workbook ({type(exc).__name__}: "
                                            f"{str(exc)[:200]})", "bad_xlsx") from None
    number = 0
    try:
        sheet = workbook.active
        if sheet is None or not hasattr(sheet, "reset_dimensions"):
            raise SafeReadError(path, None, "", "the workbook has no worksheet", "bad_xlsx")
        sheet.reset_dimensions()
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > limits.max_rows + 1:  # + the header
                raise over(path, number, "", f"sheet '{sheet.title}' has more than {limits.max_rows:,} rows",
                           "max_rows", limits)
            values = list(row)
            while values and values[-1] is None:  # formatted empty cells at the right are not columns
                values.pop()
            _check_cells(values, number, sheet.title, path, limits)
            yield number, values
    except SafeReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a cell number of 5,000 digits, broken sheet XML
        raise SafeReadError(path, number + 1, "", f"sheet row {number + 1} cannot be read ({type(exc).__name__}: "
                                                  f"{str(exc)[:200]})", "bad_xlsx") from None
    finally:
        workbook.close()


def _check_cells(values: list, number: int, title: str, path, limits: Limits) -> None:
    from openpyxl.utils import get_column_letter

    if len(values) > limits.max_columns:
        raise over(path, number, "", f"sheet '{title}' row {number} has {len(values):,} columns", "max_columns",
                   limits)
    for column, value in enumerate(values, start=1):
        if isinstance(value, str) and len(value) > limits.max_field_chars:
            raise over(path, number, f"{get_column_letter(column)}{number}", f"the cell holds {len(value):,} "
                                                                            "characters", "max_field_chars", limits)
