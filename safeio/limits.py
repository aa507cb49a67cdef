"""Bounds on every user data file, checked before and while it is parsed.

One frozen `Limits` is in force per process: its defaults below, overridden by environment variables
(MEDTUNE_MAX_ROWS=...) and by the same-named command-line flags of `python app.py`, `python -m finetune preview`
and `python -m evaluation score|run` (--max-rows ...). The readers take `limits=None` to mean "the one in force".
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace

KB, MB, GB = 1024, 1024 ** 2, 1024 ** 3


@dataclass(frozen=True)
class Limits:
    # The upload limit of the app is 200 MB; a file on the command line gets the same bound.
    max_bytes: int = 200 * MB
    # 1,000,000 rows: the largest public Chinese medical SFT sets we know (Huatuo-26M excepted) fit.
    max_rows: int = 1_000_000
    # A data table has a handful of columns; 256 leaves room for wide exports, and bounds messages that list them.
    max_columns: int = 256
    # One JSONL line: a long multi-turn conversation is ~100 KB; 16 MB is read line by line, never whole.
    max_line_bytes: int = 16 * MB
    # One field / cell / CSV value in characters: ~1 M characters is far beyond any cutoff_len a model trains with.
    max_field_chars: int = 1_000_000
    # .xlsx is a zip: the XML parts are inflated before openpyxl parses them (a 200 KB file can inflate to GBs).
    max_xlsx_part_bytes: int = 256 * MB
    max_xlsx_total_bytes: int = 1 * GB
    # Real rows nest 3-5 levels (messages[i].content); json's C parser recurses, so depth is bounded first.
    max_json_depth: int = 64
    # Python refuses int() of over 4,300 digits with a traceback; an id or a count never needs more than 100.
    max_int_digits: int = 100


# Field -> (flag, environment variable, kind, help). Flags for sizes take 500kb / 16mb / 1gb like --max-upload-size.
SETTINGS = {
    "max_bytes": ("--max-file-size", "MEDTUNE_MAX_FILE_SIZE", "size", "largest data file read"),
    "max_rows": ("--max-rows", "MEDTUNE_MAX_ROWS", "count", "rows (lines, array items, sheet rows) per file"),
    "max_columns": ("--max-columns", "MEDTUNE_MAX_COLUMNS", "count", "columns of a CSV or sheet"),
    "max_line_bytes": ("--max-line-length", "MEDTUNE_MAX_LINE_LENGTH", "size", "one JSONL line, in bytes"),
    "max_field_chars": ("--max-field-length", "MEDTUNE_MAX_FIELD_LENGTH", "count",
                        "characters of one field, cell or CSV value"),
    "max_xlsx_part_bytes": ("--max-xlsx-part", "MEDTUNE_MAX_XLSX_PART", "size",
                            "uncompressed size of one part of an .xlsx (zip) file"),
    "max_xlsx_total_bytes": ("--max-xlsx-total", "MEDTUNE_MAX_XLSX_TOTAL", "size",
                             "uncompressed size of all parts of an .xlsx file"),
    "max_json_depth": ("--max-json-depth", "MEDTUNE_MAX_JSON_DEPTH", "count", "nesting of JSON arrays/objects"),
    "max_int_digits": ("--max-int-digits", "MEDTUNE_MAX_INT_DIGITS", "count", "digits of a JSON integer"),
}
_UNITS = {"": 1, "b": 1, "kb": KB, "k": KB, "mb": MB, "m": MB, "gb": GB, "g": GB}


def parse_amount(text: str, kind: str) -> int:
    """'16mb' -> 16777216 for sizes; '1000' or '1m' (a million) for counts. ValueError names what was wrong."""
    value = str(text).strip().lower().replace(" ", "").replace("_", "")
    digits = value.rstrip("kmgb")
    unit = value[len(digits):]
    scale = _UNITS.get(unit) if kind == "size" else {"": 1, "k": 1000, "m": 1_000_000}.get(unit)
    try:
        number = float(digits)
    except ValueError:
        number = -1.0
    if scale is None or not number > 0 or number * scale > 2 ** 62:
        example = "500kb, 16mb or 1gb" if kind == "size" else "1000, 50k or 1m"
        raise ValueError(f"{text!r} is not a positive {kind} such as {example}")
    return int(number * scale)


def from_env(environ=None) -> Limits:
    """The defaults with every MEDTUNE_MAX_* variable applied; a bad value names the variable."""
    environ = os.environ if environ is None else environ
    changes = {}
    for name, (_, env, kind, _) in SETTINGS.items():
        if environ.get(env, "").strip():
            try:
                changes[name] = parse_amount(environ[env], kind)
            except ValueError as exc:
                raise ValueError(f"{env}: {exc}") from None
    return replace(Limits(), **changes)


_current: Limits | None = None


def current() -> Limits:
    """The limits in force in this process: set_current()'s, else the defaults with the environment applied."""
    global _current
    if _current is None:
        _current = from_env()
    return _current


def set_current(limits: Limits) -> None:
    global _current
    _current = limits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The limit flags, all in one group; each defaults to its environment variable, then to the built-in value."""
    group = parser.add_argument_group("data file limits (each refusal names the file, line, field and limit)")
    defaults = Limits()
    for name, (flag, env, kind, text) in SETTINGS.items():
        def parse(value, kind=kind):
            try:
                return parse_amount(value, kind)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        group.add_argument(flag, dest=f"limit_{name}", type=parse, default=None, metavar="N",
                           help=f"{text} (env {env}; default {describe(name, getattr(defaults, name))})")


def from_args(args: argparse.Namespace) -> Limits:
    """Flags over environment over defaults."""
    base = from_env()
    changes = {name: getattr(args, f"limit_{name}") for name in SETTINGS
               if getattr(args, f"limit_{name}", None) is not None}
    return replace(base, **changes)


def to_env(limits: Limits) -> dict[str, str]:
    """The limits as MEDTUNE_MAX_* variables: set in the app's environment, its job processes inherit them."""
    return {SETTINGS[name][1]: str(getattr(limits, name)) for name in SETTINGS}


def describe(name: str, value: int) -> str:
    if SETTINGS[name][2] != "size":
        return f"{value:,}"
    for unit, size in (("gb", GB), ("mb", MB), ("kb", KB)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}b"


def flag_of(name: str) -> str:
    """'max_rows' -> '--max-rows' (MEDTUNE_MAX_ROWS): how a refusal tells the user what to raise."""
    flag, env, _, _ = SETTINGS[name]
    return f"{flag} / {env}"

