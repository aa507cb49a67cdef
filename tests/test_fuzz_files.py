"""Fuzz: a corpus of malformed and hostile data files (built here, 60+) fed to the scorer (`python -m evaluation
score`, as predictions and as reference), the preview (`python -m finetune preview`) and the evaluation loader.
For each: no traceback (MEDTUNE_DEBUG=1 makes an unexpected error raise), an exit status from the documented set,
a message naming the file, bounded time and bounded peak memory. Most calls run in-process (one interpreter start
costs seconds here); a few true subprocess runs, under an address-space limit, check the real exit statuses."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import safeio
from evaluation.cli import main as evaluation_main
from evaluation.data import DataFileError
from evaluation.tasks import load_dataset
from finetune.__main__ import main as finetune_main
from tests.bomb_files import lie_about_size, write_xlsx

ROOT = Path(__file__).resolve().parent.parent
MC_REF = ROOT / "data" / "mc_sample.jsonl"
MC_PRED = ROOT / "data" / "mc_sample_predictions.jsonl"
# Small versions of the bombs: limits set by flag, files a few times over them.
FLAGS = ["--max-field-length", "100k", "--max-line-length", "256kb", "--max-rows", "2000", "--max-xlsx-part", "4mb",
         "--max-columns", "256"]
LIMITS = safeio.Limits(max_field_chars=100_000, max_line_bytes=256 * 1024, max_rows=2000,
                       max_xlsx_part_bytes=4 * 1024 * 1024)
SCORE_AS_PRED = {0, 4, 5}   # valid; predictions malformed; predictions do not match
SCORE_AS_REF = {0, 3, 4, 5}  # most are malformed (3); a well-formed one scores the sample predictions
PREVIEW = {0, 3}            # rows kept; none kept or the file unusable (ExitStatus.INPUT_MALFORMED)
MAX_SECONDS, MAX_PEAK_MB = 20.0, 96.0


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def text_cases() -> dict[str, bytes]:
    rng = random.Random(11)
    # Valid as a preview row (alpaca) and as a multiple-choice reference row (no jieba start-up, which tracemalloc
    # slows to 25 s), so that files that differ from it only in encoding or line ends read as good data.
    row = {"id": "1", "instruction": "头痛首选？", "question": "头痛首选？", "options": {"A": "休息", "B": "手术"},
           "answer": "A", "output": "A"}
    deep = "[" * 20_000 + "]" * 20_000
    return {
        "empty.jsonl": b"", "blank.jsonl": b"\n\n\n", "spaces.jsonl": b"   \t \n  \r\n ",
        "nul.jsonl": b'{"output": "B"}\n\x00\x00\x00\n', "garbage.jsonl": bytes(rng.randrange(256) for _ in range(4096)),
        "garbage_ascii.jsonl": bytes(rng.randrange(32, 127) for _ in range(4096)),
        "utf16le.jsonl": jsonl(row).decode().encode("utf-16-le"), "utf16be.jsonl": jsonl(row).decode().encode("utf-16-be"),
        "utf16bom.jsonl": jsonl(row).decode().encode("utf-16"), "utf32.jsonl": jsonl(row).decode().encode("utf-32"),
        "bom.jsonl": b"\xef\xbb\xbf" + jsonl(row), "double_bom.jsonl": b"\xef\xbb\xbf\xef\xbb\xbf" + jsonl(row),
        "gbk.jsonl": jsonl(row).decode().encode("gb18030"), "latin1.jsonl": b'{"output": "caf\xe9"}\n',
        "mixed_enc.jsonl": jsonl(row) + '{"output": "头痛"}\n'.encode("gb18030"),
        "cr_only.jsonl": jsonl(row, row).replace(b"\n", b"\r"), "crlf.jsonl": jsonl(row, row).replace(b"\n", b"\r\n"),
        "lone_cr.jsonl": b'{"output": "B"}\r\n{"output":\r "C"}\n',
        "deep_array.jsonl": ('{"output": ' + deep + "}\n").encode(), "deep_object.jsonl": (
            '{"output": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}\n").encode(),
        "deep_65.jsonl": ('{"output": ' + "[" * 65 + "]" * 65 + "}\n").encode(),
        "deep_in_string.jsonl": ('{"output": "' + "[" * 5000 + '"}\n').encode(),
        "bigint.jsonl": b'{"id": ' + b"7" * 5000 + b', "output": "B"}\n', "bigint_101.jsonl": b'{"id": 1' + b"0" * 100 + b"}\n",
        "negint.jsonl": b'{"output": -' + b"9" * 4400 + b"}\n", "bigfloat.jsonl": b'{"output": 1e999999}\n',
        "bigfloat_digits.jsonl": b'{"output": 1.' + b"5" * 5000 + b"}\n", "nan.jsonl": b'{"output": NaN}\n',
        "inf.jsonl": b'{"output": Infinity, "id": -Infinity}\n', "surrogate_hi.jsonl": b'{"output": "\\ud800"}\n',
        "surrogate_lo.jsonl": b'{"output": "x\\udfffy"}\n', "surrogate_key.jsonl": b'{"\\udbff": "B"}\n',
        "surrogate_id.jsonl": b'{"id": "\\ud83d", "output": "B"}\n', "nul_escape.jsonl": b'{"output": "B\\u0000"}\n',
        "escapes.jsonl": jsonl({"id": "\x1b[2J\x1b]0;owned\x07", "output": "\x1b[31mB"}),
        "bidi.jsonl": jsonl({"id": "q\u202e1", "output": "B\u2066"}), "raw_control.jsonl": b'{"output": "a\x01\x1fb"}\n',
        "long_line.jsonl": jsonl(row) + b'{"output": "' + b"x" * 600_000 + b'"}\n' + jsonl(row),
        "long_field.jsonl": jsonl({"input": "q", "output": "答" * 150_000}),
        "pretty.json": json.dumps(row, indent=2, ensure_ascii=False).encode(),
        "pretty.jsonl": json.dumps(row, indent=2, ensure_ascii=False).encode(),
        "wrapper.json": json.dumps({"data": [row, row]}, indent=1).encode(),
        "array.jsonl": json.dumps([row, row]).encode(), "string.jsonl": b'"just a string"\n', "number.jsonl": b"42\n",
        "null.jsonl": b"null\n", "arrays.jsonl": b"[1, 2]\n[3]\n", "truncated.jsonl": b'{"output": "B", "id": "1\n',
        "trailing_comma.jsonl": b'{"output": "B",}\n', "unclosed.jsonl": b'{"output": "B\n',
        "bad_escape.jsonl": b'{"output": "\\x41"}\n', "dup_keys.jsonl": b'{"output": "B", "output": "C"}\n',
        "many_keys.jsonl": ("{" + ",".join(f'"k{i}": {i}' for i in range(20_000)) + "}\n").encode(),
        "many_rows.jsonl": jsonl(*[{"input": f"q{i}", "output": "B"} for i in range(2500)]),
        "wrong_types.jsonl": jsonl({"output": ["B"]}, {"output": {"x": 1}}, {"id": {"a": 1}, "output": 3}),
        "empty_object.jsonl": b"{}\n{}\n",
        "empty_array.json": b"[]", "array_garbage.json": json.dumps([row]).encode() + b" trailing",
        "array_truncated.json": json.dumps([row, row]).encode()[:-20], "array_scalars.json": b"[1, \"a\", null]",
        "array_deep.json": ("[" + deep + "]").encode(), "array_bom.json": b"\xef\xbb\xbf" + json.dumps([row]).encode(),
        "array_utf16.json": json.dumps([row]).encode("utf-16"),
        "array_many.json": json.dumps([{"input": f"q{i}", "output": "B"} for i in range(2500)]).encode(),
        "quote.csv": "id,input,output\n1,\"头痛,B\n2,发烧,C\n".encode(),
        "wide.csv": (",".join(f"c{i}" for i in range(20_000)) + "\n" + ",".join("x" * 20_000) + "\n").encode(),
        "wide_row.csv": b"id,output\n1," + b",".join(b"x" for _ in range(5000)) + b"\n",
        "big_field.csv": b"id,output\n1," + b"y" * 200_000 + b"\n", "nul.csv": b"id,output\n1,B\x00\n",
        "header_only.csv": b"id,output\n", "empty.csv": b"", "ragged.csv": b"id,output\n1\n2,B,extra\n",
        "bom.csv": b"\xef\xbb\xbfid,output\n1,B\n", "semicolon.csv": b"id;output\n1;B\n",
        "cr_only.csv": b"id,output\r1,B\r2,C\r", "mid_quote.csv": b'id,output\n1,5" screen\n',
        "garbage.csv": bytes(rng.randrange(256) for _ in range(2048)),
        "many_rows.csv": b"input,output\n" + b"".join(b"q%d,B\n" % i for i in range(2500)),
    }


def xlsx_cases(tmp: Path) -> list[Path]:
    header = ["instruction", "output"]
    paths = [
        write_xlsx(tmp / "huge_cell.xlsx", [header, ["病" * 200_000, "B"]]),
        write_xlsx(tmp / "wrong_dimension.xlsx", [header] + [[f"问{i}", f"答{i}"] for i in range(1500)], "A1:B6"),
        write_xlsx(tmp / "many_columns.xlsx", [[f"c{i}" for i in range(400)]]),
        write_xlsx(tmp / "many_rows.xlsx", [header] + [[f"问{i}", "答"] for i in range(2500)]),
        lie_about_size(write_xlsx(tmp / "liar.xlsx", [header, ["a" * 3_000_000, "B"]]), "xl/sharedStrings.xml", 100),
        write_xlsx(tmp / "empty_sheet.xlsx", []),
    ]
    with zipfile.ZipFile(tmp / "zip_bomb.xlsx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"a" * (16 * 1024 * 1024))
    good = paths[0].read_bytes()
    (tmp / "truncated.xlsx").write_bytes(good[: len(good) // 3])
    (tmp / "text.xlsx").write_text("instruction,output\nq,a\n")
    (tmp / "empty.xlsx").write_bytes(b"")
    with zipfile.ZipFile(tmp / "no_workbook.xlsx", "w") as archive:
        archive.writestr("hello.txt", "hi")
    return paths + [tmp / n for n in ("zip_bomb.xlsx", "truncated.xlsx", "text.xlsx", "empty.xlsx", "no_workbook.xlsx")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("fuzz")
    paths = []
    for name, raw in text_cases().items():
        (tmp / name).write_bytes(raw)
        paths.append(tmp / name)
    paths += xlsx_cases(tmp)
    (tmp / "folder.jsonl").mkdir()
    os.mkfifo(tmp / "fifo.jsonl")
    paths += [tmp / "folder.jsonl", tmp / "fifo.jsonl", Path("/dev/null"), tmp / "missing.jsonl"]
    assert len(paths) >= 60
    return paths


def run_main(main, argv: list[str]) -> tuple[int, str, float, float]:
    """(exit status, stdout + stderr, seconds, peak MB that Python allocated) of a CLI's main() in this process."""
    out = io.StringIO()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    return code, out.getvalue(), seconds, peak


def test_every_malformed_file_gets_a_documented_exit_and_a_message_naming_it(corpus, monkeypatch):
    monkeypatch.setenv("MEDTUNE_DEBUG", "1")  # an unexpected exception raises (fails the test): no hidden traceback
    failures = []
    for path in corpus:
        name = path.name
        runs = [("score --pred", evaluation_main, ["score", "--ref", str(MC_REF), "--pred", str(path), *FLAGS],
                 SCORE_AS_PRED),
                ("score --ref", evaluation_main, ["score", "--ref", str(path), "--pred", str(MC_PRED), *FLAGS],
                 SCORE_AS_REF),
                ("preview", finetune_main, ["preview", "--data", str(path), *FLAGS], PREVIEW)]
        for label, main, argv, allowed in runs:
            code, text, seconds, peak = run_main(main, argv)
            problems = [why for why, bad in (
                (f"exit {code} not in {sorted(allowed)}", code not in allowed),
                ("the message does not name the file", name not in text),
                ("a traceback", "Traceback" in text),
                (f"{seconds:.1f} s", seconds > MAX_SECONDS), (f"peak {peak:.0f} MB", peak > MAX_PEAK_MB),
                ("a raw escape character", "\x1b" in text)) if bad]
            failures += [f"{name} [{label}]: {why}\n    {text.strip()[-300:]}" for why in problems]
        safeio.set_current(LIMITS)
        try:
            load_dataset(path)
        except DataFileError as err:
            if name not in str(err):
                failures.append(f"{name} [load_dataset]: the error does not name the file: {err}")
    assert not failures, "\n".join(failures)


def limited(memory_mb: int):
    """preexec_fn: the child may map at most memory_mb (the interpreter with torch maps about 1.5 GB)."""
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2 ** 20, memory_mb * 2 ** 20))


@pytest.mark.parametrize("argv, expected, text", [
    (["evaluation", "score", "--ref", str(MC_REF), "--pred", "{dir}/deep_array.jsonl"], 4, "nested 20001 levels deep"),
    (["evaluation", "score", "--ref", str(MC_REF), "--pred", str(MC_PRED), "--json", "{dir}/no/such/r.json"], 2,
     "does not exist"),
    (["evaluation", "score", "--ref", "{dir}/escapes.jsonl", "--pred", str(MC_PRED)], 3, "\\x1b[2J"),
    (["finetune", "preview", "--data", "{dir}/huge_cell.xlsx", "--max-field-length", "100k"], 3,
     "the cell holds 200,000 characters, over the limit of 100,000"),
])
def test_real_cli_processes_exit_as_documented_within_a_memory_limit(corpus, argv, expected, text):
    folder = str(corpus[0].parent)
    argv = [a.replace("{dir}", folder) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env, capture_output=True, timeout=120,
                          preexec_fn=limited(3072))
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == expected, output[-2000:]
    assert text in output and "Traceback" not in output and b"\x1b" not in done.stdout + done.stderr
