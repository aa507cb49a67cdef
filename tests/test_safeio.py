"""Bounded reading of user data files (safeio) and the memory-limited worker: issue 11, items 1 and 9 and the CLI
"should fix" list. Bombs are small versions built here; memory is measured with tracemalloc (what Python holds)."""

import argparse
import json
import os
import tracemalloc
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest

import safeio
from evaluation.data import DataFileError, read_rows
from evaluation.tasks import load_dataset
from finetune.formats import Conversation, DataError, Message, load_data
from finetune.preview import CHARS_PER_TOKEN_BOUND, cut_for_preview
from safeio import Limits, LimitExceeded, SafeReadError
from safeio.worker import WorkerError, peak_rss_mb, run_limited, shutdown
from tests.bomb_files import lie_about_size, write_xlsx

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def default_limits():
    """Each test starts from the defaults, and leaves them so."""
    safeio.set_current(Limits())
    yield
    safeio.set_current(Limits())


def peak_python_mb(func, *args) -> tuple[object, float]:
    """func's result (or exception) and the peak memory Python allocated meanwhile, in MB."""
    tracemalloc.start()
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the caller checks which
        result = exc
    peak = tracemalloc.get_traced_memory()[1] / MB
    tracemalloc.stop()
    return result, peak


# ---------------------------------------------------------------------------------------------------------------
# Limits: defaults, environment, flags


def test_every_limit_has_a_flag_and_a_variable_and_they_apply_in_order():
    assert {f.name for f in fields(Limits)} == set(safeio.limits.SETTINGS)
    env = {"MEDTUNE_MAX_ROWS": "50k", "MEDTUNE_MAX_LINE_LENGTH": "2mb"}
    assert safeio.from_env(env) == Limits(max_rows=50_000, max_line_bytes=2 * MB)
    with pytest.raises(ValueError, match="MEDTUNE_MAX_ROWS: 'lots' is not a positive count"):
        safeio.from_env({"MEDTUNE_MAX_ROWS": "lots"})
    parser = argparse.ArgumentParser()
    safeio.add_arguments(parser)
    args = parser.parse_args(["--max-field-length", "1m", "--max-xlsx-part", "8mb"])
    assert safeio.from_args(args) == Limits(max_field_chars=1_000_000, max_xlsx_part_bytes=8 * MB)
    assert safeio.limits.to_env(Limits())["MEDTUNE_MAX_COLUMNS"] == "256"


# ---------------------------------------------------------------------------------------------------------------
# JSONL / JSON


def test_a_giant_jsonl_line_is_one_rejected_row_read_in_bounded_memory(tmp_path):
    path = tmp_path / "giant.jsonl"
    good = json.dumps({"instruction": "头痛怎么办", "output": "休息"}, ensure_ascii=False)
    with path.open("w", encoding="utf-8") as f:
        f.write(good + "\n")
        f.write('{"instruction": "' + "x" * (24 * MB) + '", "output": "y"}\n')  # a line of 24 MB
        f.write(json.dumps({"instruction": "发烧", "output": "喝水"}, ensure_ascii=False) + "\n")
    safeio.set_current(Limits(max_line_bytes=1 * MB))
    result, peak = peak_python_mb(load_data, path)
    assert len(result.conversations) == 2 and [r.line for r in result.rejected] == [2]
    assert "over the limit of 1mb (--max-line-length / MEDTUNE_MAX_LINE_LENGTH)" in result.rejected[0].reason
    assert peak < 8, f"reading held {peak:.1f} MB: the long line was read whole"
    # the evaluation loader reads lines the same way: a problem on line 2, the other rows read
    (tmp_path / "giant_qa.jsonl").write_bytes(path.read_bytes().replace(b'"instruction"', b'"input"'))
    read, peak = peak_python_mb(read_rows, tmp_path / "giant_qa.jsonl")
    assert [p.line for p in read.problems] == [2] and len(read.rows) == 2 and peak < 8


@pytest.mark.parametrize("content, line, field, text", [
    ('{"output": ' + "[" * 5000 + "]" * 5000 + "}", 1, "", "JSON nested 5001 levels deep, over the limit of 64"),
    ('{"id": ' + "9" * 5000 + ', "output": "B"}', 1, "", "an integer of 5,000 digits, over the limit of 100"),
    ('{"output": "\\ud800x"}', 1, "output", "a lone surrogate"),
    ('{"output": {"a": ["ok", "\\udfff"]}}', 1, "output.a[1]", "a lone surrogate"),
])
def test_json_values_that_break_parsers_or_printing_are_refused_by_line_and_field(tmp_path, content, line, field,
                                                                                  text):
    path = tmp_path / "pred.jsonl"
    path.write_text(content + "\n", encoding="utf-8")
    problem, = read_rows(path).problems
    assert problem.line == line and text in problem.message
    assert (f"field '{field}'" in problem.message) == bool(field)


def test_a_pretty_printed_object_a_cr_only_file_and_utf16_get_one_clear_message(tmp_path):
    obj = tmp_path / "one.json"
    obj.write_text('{\n  "instruction": "头痛",\n  "output": "休息"\n}\n', encoding="utf-8")
    with pytest.raises(DataError, match="one JSON object over several lines"):
        load_data(obj)
    with pytest.raises(DataFileError, match="one JSON object over several lines"):
        read_rows(obj)
    cr = tmp_path / "mac.jsonl"
    cr.write_bytes(b'{"input": "a", "output": "b"}\r{"input": "c", "output": "d"}\r')
    assert [r.line for r in read_rows(cr).rows] == [1, 2]
    assert len(load_data(cr.rename(tmp_path / "mac2.jsonl"), "competition").conversations) == 2
    for name, raw, text in (("nobom.jsonl", '{"output": "B"}\n'.encode("utf-16-le"), "UTF-16 without a byte-order"),
                            ("bom.jsonl", '{"output": "B"}\n'.encode("utf-16"), "UTF-16"),
                            ("bin.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a NUL byte")):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(DataFileError, match=text):
            read_rows(tmp_path / name)
        with pytest.raises(DataError, match=text):
            load_data(tmp_path / name)


def test_a_directory_a_fifo_and_a_device_are_refused_without_opening_them(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)  # opening it for reading would block forever
    (tmp_path / "folder.jsonl").mkdir()
    for path, text in ((fifo, "not a regular file"), (tmp_path / "folder.jsonl", "is a directory"),
                       (Path("/dev/zero"), "not a regular file")):
        with pytest.raises(DataFileError, match=text):
            read_rows(path)
        with pytest.raises(DataError, match=text):
            load_data(path)


def test_rows_over_the_limit_are_refused_naming_the_line(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(f'{{"input": "q{i}", "output": "a{i}"}}\n' for i in range(50)), encoding="utf-8")
    safeio.set_current(Limits(max_rows=20))
    with pytest.raises(DataFileError, match=r"many.jsonl:21: more than 20 rows.*--max-rows"):
        read_rows(path)
    array = tmp_path / "many.json"
    array.write_text(json.dumps([{"input": f"q{i}", "output": f"a{i}"} for i in range(50)], indent=1))
    with pytest.raises(DataError, match="more than 20 items"):
        load_data(array)


# ---------------------------------------------------------------------------------------------------------------
# CSV


def test_csv_wide_header_unclosed_quote_and_long_field_get_short_messages(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"column{i}" for i in range(20_000)) + "\n" + ",".join("x" * 20_000) + "\n")
    for call, error in ((read_rows, DataFileError), (load_data, DataError)):
        with pytest.raises(error) as caught:
            call(wide)
        assert "20,000 columns, over the limit of 256" in str(caught.value) and len(str(caught.value)) < 300
    quote = tmp_path / "quote.csv"
    quote.write_text('input,output\n"头痛,休息\n发烧,喝水\n', encoding="utf-8")
    with pytest.raises(DataFileError, match=r"quote.csv:2: a quote opened on this line is never closed"):
        read_rows(quote)
    safeio.set_current(Limits(max_field_chars=1000))
    long = tmp_path / "long.csv"
    long.write_text("input,output\nq," + "a" * 5000 + "\n")
    with pytest.raises(DataError, match=r"long.csv:2: a value is too long, over the limit of 1,000"):
        load_data(long, "competition")


def test_csv_quotes_that_close_are_read_as_before(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text('input,output\n"多行\n问题","5"" 屏幕"\nq2,a2\n', encoding="utf-8")
    rows = read_rows(path).rows
    assert [r.line for r in rows] == [2, 4] and rows[0].data == {"input": "多行\n问题", "output": '5" 屏幕'}


# ---------------------------------------------------------------------------------------------------------------
# XLSX


def write_bomb(path: Path, inflated: int) -> Path:
    """An .xlsx-like zip whose shared strings inflate to `inflated` bytes, written as a stream (the test stays small)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/sharedStrings.xml", "w") as part:
            block = b"a" * MB
            for _ in range(inflated // MB):
                part.write(block)
    return path


def test_an_xlsx_zip_bomb_is_refused_before_parsing_with_memory_bounded(tmp_path):
    bomb = write_bomb(tmp_path / "bomb.xlsx", 64 * MB)
    assert bomb.stat().st_size < 200_000  # 64 MB inside a file of ~65 KB
    safeio.set_current(Limits(max_xlsx_part_bytes=8 * MB))
    error, peak = peak_python_mb(load_data, bomb)
    assert isinstance(error, DataError) and "field 'xl/sharedStrings.xml'" in str(error)
    assert "inflates to 67,108,864 bytes, over the limit of 8mb (--max-xlsx-part" in str(error) and peak < 4
    # the same bomb with headers that claim 1 KB: inflated as a stream, the lie is found (CRC), memory stays small
    liar = lie_about_size(write_bomb(tmp_path / "liar.xlsx", 64 * MB), "xl/sharedStrings.xml", 1024)
    error, peak = peak_python_mb(load_data, liar)
    assert isinstance(error, DataError) and "xl/sharedStrings.xml" in str(error) and peak < 8
    safeio.set_current(Limits(max_xlsx_total_bytes=32 * MB))
    with pytest.raises(DataError, match="more than .* bytes, over the limit of 32mb"):
        load_data(bomb)


def test_an_xlsx_with_a_wrong_dimension_is_read_to_its_real_end(tmp_path):
    rows = [["instruction", "output"]] + [[f"问题{i}", f"回答{i}"] for i in range(3000)]
    path = write_xlsx(tmp_path / "dim.xlsx", rows, dimension="A1:B6")  # the sheet claims 6 rows
    import openpyxl

    trusting = openpyxl.load_workbook(path, read_only=True).active
    assert sum(1 for _ in trusting.iter_rows()) == 6  # what the code read before: 3,000 rows silently lost
    result = load_data(path)
    assert len(result.conversations) == 3000 and result.conversations[-1].line == 3001


def test_an_xlsx_cell_over_the_limit_names_sheet_row_and_cell(tmp_path):
    path = write_xlsx(tmp_path / "cell.xlsx", [["instruction", "output"], ["病" * 2_000_000, "休息"]])
    with pytest.raises(DataError, match=r"cell.xlsx:2: field 'A2': the cell holds 2,000,000 characters, over the "
                                        r"limit of 1,000,000 \(--max-field-length"):
        load_data(path)
    wide = write_xlsx(tmp_path / "wide.xlsx", [[f"c{i}" for i in range(300)]])
    with pytest.raises(DataError, match="row 1 has 300 columns, over the limit of 256"):
        load_data(wide)
    (tmp_path / "text.xlsx").write_text("instruction,output\n")
    with pytest.raises(DataError, match="not an .xlsx workbook"):
        load_data(tmp_path / "text.xlsx")
    truncated = tmp_path / "cut.xlsx"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="damaged or truncated .xlsx"):
        load_data(truncated)


# ---------------------------------------------------------------------------------------------------------------
# Preview: text cut before tokenising


def conversation(*texts: str) -> Conversation:
    roles = ["user", "assistant"] * len(texts)
    return Conversation(tuple(Message(role, text) for role, text in zip(roles, texts)), line=7)


@pytest.mark.parametrize("texts, expected_turns", [
    (("短问题", "短回答"), 2),                       # under the budget: unchanged
    (("问" * 10_000, "答"), 2),                       # one long text: cut, the answer kept (short)
    (("问", "答" * 10_000, "再问", "再答"), 2),       # the budget spent by turn 2: the later pair left out
])
def test_cut_for_preview_bounds_the_text_and_keeps_the_shape(texts, expected_turns):
    cutoff = 64
    cut = cut_for_preview(conversation(*texts), cutoff)
    assert len(cut.messages) == expected_turns and cut.messages[-1].role == "assistant" and cut.line == 7
    assert sum(len(m.content) for m in cut.messages) <= cutoff * CHARS_PER_TOKEN_BOUND + CHARS_PER_TOKEN_BOUND
    if len("".join(texts)) < cutoff * CHARS_PER_TOKEN_BOUND:
        assert cut == conversation(*texts)


# ---------------------------------------------------------------------------------------------------------------
# The worker


def test_the_worker_survives_a_memory_bomb_and_a_hang_and_passes_errors_and_limits():
    shutdown()  # fresh workers: one warm from an earlier test (a preview loads torch) is already past 1 GB
    try:
        with pytest.raises(WorkerError) as caught:
            run_limited(bytearray, 8 * 1024 * MB, memory_mb=256)  # 8 GB in a worker allowed 256 MB more
        assert caught.value.kind == "memory"
        with pytest.raises(WorkerError) as caught:
            run_limited(os.system, "sleep 5", timeout_s=1)
        assert caught.value.kind == "timeout"
        assert run_limited(sum, [1, 2, 3]) == 6  # a fresh worker takes the next call
        with pytest.raises(DataFileError) as caught:  # the project's error types arrive whole
            run_limited(read_rows, "/nonexistent/pred.jsonl")
        assert caught.value.problems[0].kind == "missing_file"
        safeio.set_current(Limits(max_rows=3))
        assert run_limited(safeio.current) == Limits(max_rows=3)  # the caller's limits are the worker's
        assert run_limited(peak_rss_mb) < 1024
        assert run_limited(os.nice, 0) > os.nice(0)  # batch work below the app's own requests
    finally:
        shutdown()


def test_load_dataset_within_explicit_limits(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"input": "q", "output": "' + "a" * 500 + '"}\n', encoding="utf-8")
    assert load_dataset(path).items
    problem, = load_dataset(path, limits=Limits(max_field_chars=100)).problems
    assert problem.kind == "limit" and "field 'output': 500 characters, over the limit of 100" in problem.message
    assert isinstance(LimitExceeded(path, 1, "", "x"), SafeReadError)


# ---------------------------------------------------------------------------------------------------------------
# The scorer's command line: the "should fix" items that are not about reading


def run_score(*argv: str) -> tuple[int, str]:
    import contextlib
    import io

    from evaluation.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(["score", *argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue()


def test_score_cli_weights_outputs_and_escape_codes(tmp_path):
    root = Path(__file__).resolve().parent.parent / "data"
    ref, pred = str(root / "qa_sample_competition.jsonl"), str(root / "qa_sample_predictions.jsonl")
    for weights in ("rouge-l=nan", "rouge-l=inf", "bleu-4=-1"):
        code, text = run_score("--ref", ref, "--pred", pred, "--weights", weights)
        assert code == 2 and "with a finite weight >= 0" in text and "score nan" not in text
    for option in ("--json", "--per-item"):
        code, text = run_score("--ref", ref, "--pred", pred, option, str(tmp_path / "missing" / "out.json"))
        assert code == 2 and f"{option} " in text and "does not exist" in text and "Traceback" not in text
        code, text = run_score("--ref", ref, "--pred", pred, option, str(tmp_path))
        assert code == 2 and "is a folder" in text
    mc_ref = tmp_path / "ref.jsonl"
    mc_ref.write_text(json.dumps({"id": "\x1b]0;owned\x07\x1b[2J", "question": "q", "options": {"A": "a", "B": "b"},
                                  "answer": "A"}) + "\n", encoding="utf-8")
    (tmp_path / "pred.jsonl").write_text(json.dumps({"id": "\u202eevil", "output": "A"}) + "\n", encoding="utf-8")
    code, text = run_score("--ref", str(mc_ref), "--pred", str(tmp_path / "pred.jsonl"))
    assert code == 5 and "\x1b" not in text and "\u202e" not in text
    assert "\\x1b]0;owned\\x07\\x1b[2J" in text and "\\u202eevil" in text  # shown, escaped
