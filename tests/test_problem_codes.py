"""One table of problem sentences (safeio.problems.MESSAGES, EN + ZH beside each code): every code a backend raises
has both, and the Chinese page says a file's problems in Chinese (field names, file names and numbers aside)."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from evaluation.data import DataFileError, read_rows
from finetune.formats import FORMATS, DataError, load_data, parse_column_map
from safeio import Limits
from safeio.problems import FIXES, MESSAGES, ProblemError, render
from tests.test_page_browser import CJK, foreign
from ui.finetune_tab import rejected_frame
from ui.problems import fix_text, problem_text
from ui.strings import STRINGS, t

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["safeio", "evaluation", "finetune", "hosting", "chat", "jobs", "models"]
# How each builder of a problem takes its code: (function name, position of the code, keyword).
BUILDERS = {"ProblemError": (0, "code"), "_row_error": (0, "code"), "_data_error": (1, "code"),
            "Problem": (2, "kind"), "_error": (2, "code"), "SafeReadError": (4, "kind"),
            "LimitExceeded": (4, "kind"), "NotUtf8": (4, "kind"), "ConfigError": (3, "code")}
DEFAULT_KINDS = {"SafeReadError": "unreadable", "LimitExceeded": "limit", "NotUtf8": "encoding"}


def raised_codes() -> dict[str, str]:
    """code -> where it is first raised, for every literal code passed to a problem builder in the backends."""
    found = {}
    for package in BACKENDS:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name not in BUILDERS:
                    continue
                position, keyword = BUILDERS[name]
                arg = node.args[position] if len(node.args) > position else next(
                    (k.value for k in node.keywords if k.arg == keyword), None)
                code = arg.value if isinstance(arg, ast.Constant) else DEFAULT_KINDS.get(name) if arg is None else None
                if isinstance(code, str):
                    found.setdefault(code, f"{path.relative_to(ROOT)}:{node.lineno}")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # a reader's finer {"say": code}
                if isinstance(node, ast.Dict):
                    for key, value in zip(node.keys, node.values):
                        if isinstance(key, ast.Constant) and key.value == "say" and isinstance(value, ast.Constant):
                            found.setdefault(value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_code_has_english_and_chinese(code):
    english, chinese = MESSAGES[code]
    assert english.strip() and CJK.search(chinese), code
    assert STRINGS[f"problem.{code}"] == MESSAGES[code]  # the page reads the same table, not a copy


@pytest.mark.parametrize("code", sorted(FIXES))
def test_every_fix_has_chinese(code):
    assert CJK.search(FIXES[code][1]) and STRINGS[f"problem_fix.{code}"] == FIXES[code]


def test_every_code_raised_in_the_backends_has_a_sentence():
    codes = raised_codes()
    assert len(codes) > 40  # the scan finds the builders (a rename would make this test pass vacuously)
    missing = {code: where for code, where in codes.items() if code not in MESSAGES}
    assert not missing, f"codes raised without a sentence in safeio.problems.MESSAGES: {missing}"


def test_a_problem_error_keeps_its_code_across_processes_and_speaks_english_on_the_command_line():
    err = ProblemError("turn_order", "messages[1].role", kind="bad_field", expected="user", got="assistant")
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.field, again.kind, again.params) == (err.code, err.field, err.kind, err.params)
    assert str(again) == ("field 'messages[1].role': expected a user turn here, got assistant (turns must alternate "
                          "user/assistant)")
    problem = again.at(7, file="data.jsonl")
    assert (problem.line, problem.kind, problem.code) == (7, "bad_field", "turn_order")
    assert problem_text(problem, "zh") == "这里应是用户的发言，却是助手的（用户与助手须轮流发言）。"
    assert render("no_such_code", "zh", {}) is None
    said = pickle.loads(pickle.dumps(ProblemError("utf16", kind="encoding", said="the file is UTF-16")))
    assert (str(said), said.kind, said.at(1).code) == ("the file is UTF-16", "encoding", "utf16")


def apart_from(text: str, names) -> str:
    for name in sorted(names, key=len, reverse=True):  # "constant_with_warmup" before "constant"
        text = text.replace(name, " ")
    return text


BAD_ROWS = "\n".join([
    '{"instruction": "头痛怎么办", "output": "多休息"}',
    '{"instruction": "q2", "output": 5}',
    '{bad json',
    '[1, 2]',
    '{"instruction": "头痛怎么办", "output": "多休息"}',
    '{"instruction": "", "output": "x"}',
    '{"instruction": "q3", "output": "a", "history": "x"}',
    '{"instruction": "q4", "output": "a", "history": [["only one"]]}',
    '{"messages": [{"role": "doctor", "content": "hi"}]}',
]) + "\n"


def test_a_bad_training_file_previewed_on_the_chinese_page_is_all_chinese(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(BAD_ROWS, encoding="utf-8")
    loaded = load_data(path)
    assert len(loaded.rejected) == 8
    frame = rejected_frame(loaded.rejected, [(10, "no answer token left within cutoff_len=64")], 64, "zh")
    assert list(frame.columns) == [t("col.line", "zh"), t("col.field", "zh"), t("col.reason", "zh")]
    reasons = list(frame[t("col.reason", "zh")])
    assert all(CJK.search(text) for text in reasons), reasons
    assert not foreign(reasons, "zh"), reasons
    english = rejected_frame(loaded.rejected, [], 64, "en")
    assert "expected a string, got int (5)" in list(english["reason"])  # the command line's words on /
    assert not any(CJK.search(fix_text(p, "zh")) is None and fix_text(p, "zh") for p in loaded.rejected)


@pytest.mark.parametrize("make", [
    lambda tmp: load_data(tmp / "rows.txt"),
    lambda tmp: load_data(tmp / "absent.jsonl"),
    lambda tmp: load_data(tmp / "rows.jsonl", data_format="parquet"),
    lambda tmp: load_data(tmp / "unknown.jsonl"),
    lambda tmp: parse_column_map("instruction"),
])
def test_a_training_file_refused_whole_says_why_in_chinese(tmp_path, make):
    from ui.errors import backend_error

    (tmp_path / "rows.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "rows.jsonl").write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    (tmp_path / "unknown.jsonl").write_text('{"frage": "q", "antwort": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        make(tmp_path)
    assert caught.value.problem is not None
    again = pickle.loads(pickle.dumps(caught.value))  # the preview reads in a worker process (safeio.worker)
    assert str(again) == str(caught.value) and again.problem.to_dict() == caught.value.problem.to_dict()
    message = backend_error(caught.value, "zh").message
    # Names stand as they are: the data formats, and the field names and values the user wrote.
    names = (*FORMATS, "parquet", "antwort", "frage", "instruction")
    assert CJK.search(message) and not foreign([apart_from(message, names)], "zh"), message
    assert backend_error(caught.value, "en").message == str(caught.value)


# Files the bounded readers refuse, whole or by the row: each problem said in Chinese on /zh/.
BAD_FILES = {
    "broken.jsonl": '{"output": "B"}\n{"output": \n[1]\n'.encode(),
    "gbk.jsonl": '{"output": "你好"}\n'.encode("gbk"),
    "utf16.csv": "output\nB\n".encode("utf-16"),
    "utf16_no_bom.jsonl": '{"output": "B"}\n'.encode("utf-16-le") * 40,
    "binary.jsonl": b'{"output": "B"}\n\x00\x01\x02',
    "workbook.csv": b"PK\x03\x04" + b"\x00" * 40,
    "empty.jsonl": b"",
    "pretty.jsonl": b'{\n  "output": "B",\n  "id": "1"\n}\n',
    "surrogate.jsonl": b'{"output": "\\ud800"}\n',
    "cells.csv": b"output\nB,C\n",
    "quote.csv": b'output\n"B\nC\n',
    "rows.jsonl": b'{"output": "B"}\n' * 5,
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_file_the_readers_refuse_is_said_in_chinese(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    try:
        problems = read_rows(path, Limits(max_rows=3)).problems
    except DataFileError as err:
        problems = err.problems
    assert problems, name
    texts = [problem_text(p, "zh") for p in problems]
    # Names stand as they are: the file's own field names, and the tools and encodings a user saves with.
    names = ("output", "id", "Unicode", "Excel", "zip", "JSON Lines")
    assert all(CJK.search(text) for text in texts) and not foreign([apart_from(x, names) for x in texts], "zh"), texts
    assert [problem_text(p, "en") for p in problems] == [p.message for p in problems]  # the CLI's own words on /


BAD_USERS = {
    "top": "people: {}\n",
    "users_list": "users: [a, b]\n",
    "name": "users:\n  'bad name!': {role: admin, password: x}\n",
    "entry": "users:\n  ann: admin\n",
    "unknown_field": "users:\n  ann: {role: admin, password: x, email: a@b}\n",
    "missing_field": "users:\n  ann: {role: admin}\n",
    "role": "users:\n  ann: {role: boss, password: x}\n",
    "hash": "users:\n  ann: {role: admin, password: not-a-hash}\n",
    "yaml": "users:\n  ann: {role: admin\n",
}


@pytest.mark.parametrize("case", sorted(BAD_USERS))
def test_a_bad_users_file_is_said_in_chinese(tmp_path, case):
    from hosting.users import UsersError, read_users_file

    path = tmp_path / "users.yaml"
    path.write_text(BAD_USERS[case], encoding="utf-8")
    with pytest.raises(UsersError) as caught:
        read_users_file(path)
    problem = caught.value.problem
    assert problem is not None and problem.code in MESSAGES
    text = problem_text(problem, "zh")
    # Names stand as they are: the file's keys, user names, roles and values, and the command to run.
    names = ("python -m hosting.users add", "bad name", "users", "role", "password", "email", "ann", "admin",
             "member", "guest", "boss")
    assert CJK.search(text) and not foreign([apart_from(text, names)], "zh"), text


SETTINGS_CASES = [dict(model=" "), dict(data="absent.jsonl"), dict(lora_dropout=2.0), dict(batch_size=0),
                  dict(lr_scheduler="zz"), dict(adapter_name="a b"), dict(num_epochs="3"), dict(lora_targets="a b"),
                  dict(select_by="eval_loss", val_split=0.0), dict(eval_sets=[{"path": "x.jsonl", "nme": "x"}])]


@pytest.mark.parametrize("changes", SETTINGS_CASES, ids=[next(iter(c)) for c in SETTINGS_CASES])
def test_a_refused_training_setting_is_said_in_chinese(changes):
    from finetune.config import SCHEDULERS, ConfigError, TrainConfig
    from ui.errors import backend_error

    with pytest.raises(ConfigError) as caught:
        TrainConfig(**{"data": str(ROOT / "data" / "train_sample.jsonl"), **changes}).validate()
    err = pickle.loads(pickle.dumps(caught.value))  # checked in a worker process too (jobs.worker)
    assert err.problem is not None and err.problem.code in MESSAGES and str(err) == str(caught.value)
    message = backend_error(err, "zh").message
    # Names stand as they are: the settings, their values and the keys of a set.
    names = (*changes, *SCHEDULERS, "max_steps", "cutoff_len", "val_split", "zz", "eval_loss", "demo", "absent.jsonl",
             "eval_sets[0].nme", "path", "task", "all-linear", "attention")
    assert CJK.search(message) and not foreign([apart_from(message, names)], "zh"), message
    assert backend_error(err, "en").message == str(err)
