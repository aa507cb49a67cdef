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
            "LimitExceeded": (4, "kind"), "NotUtf8": (4, "kind"), "ConfigError": (3, "code"),
            "WeightsError": (0, "code"), "ModelLoadError": (0, "code"), "EvalError": (1, "code"),
            "QueueError": (1, "code")}
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


# --- the other backend errors that reach a page: each said from its code (+ params) on /zh/, never the fallback ---

def said_in_chinese(message: str, names=()) -> bool:
    """Chinese, with no English word left once the names (settings, files, models, values) are taken out; the
    "以下为后端原文" fallback (a backend sentence without a code) does not count."""
    return (bool(CJK.search(message)) and t("error.backend_detail", "zh").split("{")[0] not in message
            and not foreign([apart_from(message, names)], "zh"))


MC, QA = str(ROOT / "data" / "mc_sample.jsonl"), str(ROOT / "data" / "qa_sample.jsonl")
EVAL_SET_CASES = {
    "task_mismatch": dict(eval_sets=[{"path": MC, "task": "qa"}]),
    "duplicate": dict(eval_sets=[{"path": MC, "name": "x"}, {"path": QA, "name": "x"}]),
    "no_set": dict(eval_sets=[MC], select_by="accuracy:nope"),
    "metric": dict(eval_sets=[MC], select_by="zzz:mc_sample"),
    "unknown_task": dict(eval_sets=[{"path": MC, "task": "zz"}]),
}


@pytest.mark.parametrize("case", sorted(EVAL_SET_CASES))
def test_a_refused_validation_set_is_said_in_chinese_on_the_page_and_in_the_failed_job(case):
    from finetune.config import ConfigError, TrainConfig
    from jobs.progress import JobProgress
    from jobs.scheduler import JobStatus
    from jobs.train_eval import load_train_eval_sets
    from jobs.worker import problem_status
    from ui.errors import backend_error
    from ui.finetune_tab import status_text

    cfg = TrainConfig(data=str(ROOT / "data" / "train_sample.jsonl"), **EVAL_SET_CASES[case])
    with pytest.raises(ConfigError) as caught:
        load_train_eval_sets(cfg)
    err = pickle.loads(pickle.dumps(caught.value))
    assert err.problem is not None and err.problem.code in MESSAGES, str(err)
    names = ("eval_sets", "select_by", "accuracy:nope", "nope", "zzz", "zz", "mc_sample.jsonl", "mc_sample", "name",
             "task: qa", "mc", "qa", "rouge-1", "rouge-2", "rouge-l", "bleu-4", "accuracy", "eval_loss", "x")
    assert said_in_chinese(backend_error(err, "zh").message, names), backend_error(err, "zh").message
    assert backend_error(err, "en").message == str(err)
    # The job process keeps the code in status.json; the Fine-tune tab says the failure in the page's language.
    failed = JobProgress("j", JobStatus.FAILED, "failed", error=str(err), **problem_status(err))
    text = status_text(failed, "zh")
    assert t("finetune.failed", "zh").split("{")[0] in text and str(err) not in text, text
    assert str(err) in status_text(failed, "en")


def test_a_refused_evaluation_setting_and_weights_and_queue_refusal_are_said_in_chinese():
    from evaluation.run import EvalConfig, EvalError
    from evaluation.submission import WeightsError, parse_weights
    from jobs.scheduler import QueueError
    from ui.errors import backend_error
    from ui.jobs_tab import queue_error

    refusals = []
    for changes in (dict(batch_size=0), dict(shots=2), dict(multi_threshold=2.0)):
        with pytest.raises(EvalError) as caught:
            EvalConfig(data=("a.jsonl",), out_dir="out", models=(None,), **changes)
        refusals.append(pickle.loads(pickle.dumps(caught.value)))  # checked in a worker process too
    for weights in ("rouge-l", "nope=1", "rouge-l=0"):
        with pytest.raises(WeightsError) as caught:
            parse_weights(weights, "qa")
        refusals.append(pickle.loads(pickle.dumps(caught.value)))
    names = ("batch_size", "shots_data", "shots", "multi_threshold", "rouge-l", "rouge-1", "rouge-2", "bleu-4", "nope")
    for err in refusals:
        assert said_in_chinese(backend_error(err, "zh").message, names), backend_error(err, "zh").message
        assert backend_error(err, "en").message == str(err)
    for err in (QueueError("a job 'j1' is already in the queue", "job_exists", job="j1"),
                QueueError("unknown job kind 'x'; known: evaluate, train", "job_kind_unknown", kind="x",
                           known="evaluate, train")):
        message = queue_error(err, "zh").message
        assert said_in_chinese(message, ("j1", "evaluate", "train", "x")), message
        assert queue_error(err, "en").message == str(err)


def test_a_model_that_cannot_be_read_is_said_in_chinese(tmp_path):
    from finetune.preview import ModelLoadError, preview_upload
    from models.preflight import PreflightError, preflight
    from ui.errors import backend_error
    from ui.finetune_tab import status_text
    from jobs.progress import JobProgress
    from jobs.scheduler import JobStatus

    with pytest.raises(ModelLoadError) as caught:  # HF_HUB_OFFLINE: an id not in the cache has no tokenizer
        preview_upload(ROOT / "data" / "train_sample.jsonl", "auto", None, str(tmp_path / "no-model"), 64)
    err = pickle.loads(pickle.dumps(caught.value))
    assert said_in_chinese(backend_error(err, "zh").message, (str(tmp_path / "no-model"),))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PreflightError) as refused:
        preflight("broken", str(tmp_path / "broken"), trust_remote_code=False, dtype="float32", device="cpu")
    message = backend_error(refused.value, "zh").message
    assert refused.value.code == "no_config" and said_in_chinese(message, ("broken", "config.json", "JSON", "Hub ID"))
    assert "Expecting" in backend_error(refused.value, "en").message  # the library's words stay on /
    failed = JobProgress("j", JobStatus.FAILED, "failed", error=str(refused.value),
                         error_code="preflight.no_config", error_params=refused.value.params)
    assert "Expecting" not in status_text(failed, "zh") and "JSON" in status_text(failed, "zh")


def test_an_upload_over_its_limits_is_said_in_chinese():
    from safeio.worker import WorkerError, run_limited
    from ui.errors import worker_error

    with pytest.raises(WorkerError) as caught:  # the real worker, stopped by its time limit
        run_limited(__import__("time").sleep, 5, timeout_s=0.5)
    names = ("MEDTUNE_WORKER_TIMEOUT_S", "MEDTUNE_WORKER_MEMORY_MB", "MB")
    assert said_in_chinese(worker_error(caught.value, "zh").message, names), worker_error(caught.value, "zh").message
    assert str(caught.value) in worker_error(caught.value, "en").message
    memory = pickle.loads(pickle.dumps(WorkerError("memory", "ran out of its 512 MB", memory_mb=512)))
    assert said_in_chinese(worker_error(memory, "zh").message, names)


def test_a_failed_download_is_said_in_chinese(monkeypatch, tmp_path):
    import time

    from models.catalog import Download, download_error_code
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    from ui import model_picker

    # A real download child against a mirror nobody answers on: it fails, and says why as a code.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    download = Download("someone/some-model", cache_dir=tmp_path)
    deadline = time.monotonic() + 60
    while download.state() == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert download.state() == "failed" and download.error_code() == "network", download.error()
    monkeypatch.setitem(model_picker._DOWNLOADS, "someone/some-model", download)
    zh, en = (model_picker.download_status("someone/some-model", lang) for lang in ("zh", "en"))
    assert said_in_chinese(zh, ("Hub", "HF_ENDPOINT")), zh
    assert download.error() in en
    response = type("R", (), {"status_code": 404, "headers": {}, "request": None})()
    assert download_error_code(RepositoryNotFoundError("x", response=response)) == "not_found"
    assert download_error_code(GatedRepoError("x", response=response)) == "gated"


def test_the_run_yaml_command_comment_is_in_the_page_language():
    from finetune.config import TrainConfig
    from ui.finetune_tab import command_text

    head = command_text(TrainConfig(data="x.jsonl"), "runs", "zh").splitlines()[0]
    assert said_in_chinese(head, ("run.yaml",)), head
    assert command_text(TrainConfig(data="x.jsonl"), "runs").startswith("# run.yaml (save this whole text)")


# --- errors stored with a finished queue job (jobs/store.py "problem"), said by the Evaluate and Jobs tabs ---


def finished(queue, job_id: str, timeout_s: float = 30.0):
    import time

    from jobs.status import FINAL

    deadline = time.monotonic() + timeout_s
    while (job := queue.get(job_id)).state not in FINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_a_failed_evaluation_job_keeps_its_code_and_the_tabs_say_it_in_the_page_language(tmp_path):
    from types import SimpleNamespace

    from evaluation.run import EvalConfig
    from jobs.runners import default_runners, eval_config_to_dict
    from jobs.scheduler import JobQueue, JobStatus
    from ui.evaluate_tab import EvaluateHandlers
    from ui.jobs_tab import job_detail

    shots = tmp_path / "shots.jsonl"  # two examples, where five are asked for: refused inside the run
    shots.write_text("".join((ROOT / "data" / "mc_sample.jsonl").read_text("utf-8").splitlines(True)[:2]), "utf-8")
    config = EvalConfig(data=(MC,), out_dir=str(tmp_path / "out"), shots=5, shots_data=(str(shots),))
    queue = JobQueue(tmp_path / "data", runners=default_runners(), poll_s=0.05)
    try:
        job = queue.submit("evaluate", "alice", {"config": eval_config_to_dict(config), "model": "demo",
                                                 "data_dir": str(tmp_path / "data")})
        job = finished(queue, job.id)
    finally:
        queue.close()
    assert job.state == JobStatus.FAILED and "5 shots asked for" in job.error  # the English text stays (CLI, logs)
    assert job.problem == {"code": "problem.eval_few_shots", "params": {"name": "shots.jsonl", "k": 5, "count": 2}}
    zh = EvaluateHandlers.ended(SimpleNamespace(lang="zh"), job).message
    assert said_in_chinese(zh, ("shots", "shots.jsonl")) and "5" in zh and "2" in zh, zh
    assert EvaluateHandlers.ended(SimpleNamespace(lang="en"), job).message == job.error
    detail_zh, _ = job_detail(job, "zh", "owner")
    assert said_in_chinese(detail_zh.split("\n\n")[-1], ("shots", "shots.jsonl")), detail_zh
    assert job.error in job_detail(job, "en", "owner")[0]
    reopened = JobQueue(tmp_path / "data", runners=default_runners())  # read back by a later app process
    try:
        assert reopened.get(job.id).problem == job.problem
    finally:
        reopened.close()


def test_a_job_another_process_owns_fails_with_a_coded_job_busy(tmp_path):
    import os

    from jobs.files import JobFiles
    from jobs.process import OwnerLock
    from jobs.scheduler import JobQueue, JobStatus, Runner
    from ui.jobs_tab import job_detail

    folder = tmp_path / "data" / "jobs" / "job-1"
    folder.mkdir(parents=True)
    held = OwnerLock(JobFiles(folder)).acquire()  # the owner: another trainer (here this process, on its own lock)
    try:
        # The runner takes the job's owner lock as a training job's process does (jobs/process.py start_job).
        queue = JobQueue(tmp_path / "data", runners={"train": Runner(
            lambda job, control: OwnerLock(JobFiles(folder)).acquire(wait_s=0.1))}, poll_s=0.05)
        try:
            job = finished(queue, queue.submit("train", "alice", {"job_dir": str(folder)}).id)
        finally:
            queue.close()
    finally:
        held.release()
    assert job.state == JobStatus.FAILED and "already running in process" in job.error
    assert job.problem == {"code": "problem.job_busy", "params": {"job": "job-1", "pid": os.getpid()}}
    detail_zh = job_detail(job, "zh", "owner")[0].split("\n\n")[-1]
    assert said_in_chinese(detail_zh, ("job-1", "python -m finetune stop", str(os.getpid()))), detail_zh
    assert job.error in job_detail(job, "en", "owner")[0]


def test_a_queue_database_of_the_old_schema_opens_and_keeps_its_jobs(tmp_path):
    import re
    import sqlite3

    from jobs.status import JobStatus
    from jobs.store import SCHEMA, JobStore

    # The schema before the column was added: without its line, and without the comma that led to it.
    old = re.sub(r"\n\s*problem TEXT[^\n]*", "", SCHEMA).replace("worker TEXT,", "worker TEXT")
    assert "problem" not in old.split("(", 1)[1] and "worker TEXT " in old
    with sqlite3.connect(tmp_path / "queue.sqlite") as db:
        db.executescript(old)
        db.execute("INSERT INTO jobs (id, kind, owner, params, state, line, created_at, error, worker) "
                   "VALUES ('old-1', 'evaluate', 'bob', '{}', 'running', 1, 0, NULL, 'w')")
    store = JobStore(tmp_path)
    try:
        assert store.row("old-1").problem is None and store.row("old-1").owner == "bob"
        store.finish("old-1", "w", JobStatus.FAILED, "no items", problem={"code": "problem.eval_no_items",
                                                                           "params": {"name": "a.jsonl"}})
        assert store.row("old-1").problem["params"] == {"name": "a.jsonl"}
        JobStore(tmp_path).close()  # a second opening (another process) finds the column there
    finally:
        store.close()


def test_evaluation_and_prediction_errors_inside_a_run_have_codes(tmp_path):
    from evaluation.predict import PredictConfig
    from evaluation.run import EvalConfig, EvalError, load_shots

    shots = tmp_path / "shots.jsonl"
    shots.write_text((ROOT / "data" / "mc_sample.jsonl").read_text("utf-8").splitlines(True)[0], "utf-8")
    errors = []
    with pytest.raises(EvalError) as caught:
        load_shots([str(shots)], 3)
    errors.append(caught.value)
    with pytest.raises(EvalError) as caught:
        PredictConfig(data="t.jsonl", out="o.jsonl", batch_size=0)
    errors.append(caught.value)
    for err in errors:
        err = pickle.loads(pickle.dumps(err))
        assert err.code in MESSAGES, err
        from ui.errors import backend_error

        assert said_in_chinese(backend_error(err, "zh").message, ("shots.jsonl", "shots", "batch_size")), err
        assert backend_error(err, "en").message == str(err)


def test_a_training_job_that_failed_while_no_app_watched_keeps_its_code_in_the_queue(tmp_path):
    from jobs.files import JobFiles
    from jobs.runners import default_runners
    from jobs.scheduler import JobQueue, JobStatus
    from jobs.store import JobStore
    from ui.jobs_tab import job_detail

    folder = tmp_path / "data" / "jobs" / "job-2"
    folder.mkdir(parents=True)
    JobFiles(folder).update_status(state="failed", error="data: no data file given", error_code="problem.config_no_data",
                                   error_params={"field": "data", "message": "no data file given"})
    store = JobStore(tmp_path / "data")  # the row an app process left running when it died
    store.register("job-2", "train", "alice", {"job_dir": str(folder)}, worker="gone")
    store.close()
    queue = JobQueue(tmp_path / "data", runners=default_runners())  # the next app adopts it: failed, with its code
    try:
        job = queue.get("job-2")
    finally:
        queue.close()
    assert job.state == JobStatus.FAILED and job.problem["code"] == "problem.config_no_data", job
    detail_zh = job_detail(job, "zh", "owner")[0].split("\n\n")[-1]
    assert said_in_chinese(detail_zh, ("data",)), detail_zh
