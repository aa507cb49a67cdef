"""What every command line shares (issue 17): --help shows each flag's help and default, one data-folder rule,
`--set FIELD=VALUE`, a clear message instead of EOFError, the demo model's start message."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class _Parsed(Exception):
    def __init__(self, parser):
        self.parser = parser


def _capture(monkeypatch, call) -> argparse.ArgumentParser:
    """The parser a CLI builds, caught where it would parse (chat and app.py build theirs inside parse_args)."""
    def stop(self, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    with pytest.raises(_Parsed) as caught:
        call()
    return caught.value.parser


def _parsers(parser, name):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _all_parsers(monkeypatch):
    import app
    import chat.cli
    import hosting.users
    from evaluation.cli import build_parser as evaluation_parser
    from finetune.__main__ import build_parser as finetune_parser

    yield from _parsers(finetune_parser(), "python -m finetune")
    yield from _parsers(evaluation_parser(), "python -m evaluation")
    yield from _parsers(hosting.users._parser(), "python -m hosting.users")
    yield from _parsers(_capture(monkeypatch, lambda: chat.cli.parse_args([])), "python -m chat")
    yield from _parsers(_capture(monkeypatch, lambda: app.parse_args([])), "python app.py")


def test_every_flag_has_help_with_its_default(monkeypatch):
    missing = []
    for name, parser in _all_parsers(monkeypatch):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) \
                    or action.help == argparse.SUPPRESS:
                continue
            if not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
                continue
            shown = formatter._get_help_string(action)  # what --help prints after the flag
            if action.default not in (None, argparse.SUPPRESS) and "default" not in shown:
                missing.append(f"{name} {'/'.join(action.option_strings)}: default {action.default!r} not shown")
            # argparse lists choices as {a,b} unless a metavar hides them: then the help must name them
            if action.choices and action.metavar and not all(str(c) in shown for c in action.choices):
                missing.append(f"{name} {'/'.join(action.option_strings)}: choices not shown")
    assert not missing, "\n".join(missing)


def test_one_data_folder_rule(monkeypatch):
    import app
    import chat.cli
    from finetune.__main__ import build_parser as finetune_parser
    from safeio import default_data_dir
    from ui.context import AppContext

    assert default_data_dir({}) == Path("runs")  # relative: the current directory's, for the app and every CLI
    assert default_data_dir({"MEDTUNE_DATA_DIR": "/srv/medtune"}) == Path("/srv/medtune")
    monkeypatch.delenv("MEDTUNE_DATA_DIR", raising=False)
    assert AppContext().data_dir == Path("runs")
    assert finetune_parser().parse_args(["jobs"]).data_dir == "runs"
    assert chat.cli.parse_args([]).data_dir == "runs"
    assert app.parse_args(["--data-dir", "elsewhere"]).data_dir == "elsewhere"


def _cli(*args, cwd, stdin=subprocess.DEVNULL, env=None, text_in=None):
    feed = {"input": text_in} if text_in is not None else {"stdin": stdin}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, **feed)


def test_hosting_users_follows_the_data_dir_and_needs_no_terminal(tmp_path):
    env = {"MEDTUNE_DATA_DIR": "", "MEDTUNE_USERS_FILE": ""}
    done = _cli("hosting.users", "add", "bob", "--role", "guest", "--data-dir", "team", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "EOFError" not in done.stderr
    assert "no terminal" in done.stderr and "--password-stdin" in done.stderr
    done = _cli("hosting.users", "--data-dir", "team", "add", "bob", "--role", "guest", "--password-stdin",
                cwd=tmp_path, stdin=None, env=env, text_in="pw-of-bob\n")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "team" / "users.yaml").is_file()  # --data-dir names the users file's folder too
    listing = _cli("hosting.users", "list", cwd=tmp_path, env={"MEDTUNE_DATA_DIR": "team", "MEDTUNE_USERS_FILE": ""})
    assert "bob\tguest" in listing.stdout


def test_set_takes_field_equals_value(tmp_path):
    from finetune.__main__ import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--set", "packing=false", "--set", "warmup_ratio=0.1", "pack_len=2048",
                                      "--set", "dedup", "false"])
    cfg = config_from_args(args)
    assert cfg.packing is False and cfg.warmup_ratio == 0.1 and cfg.pack_len == 2048 and cfg.dedup is False


def test_show_command_text_is_a_valid_config(tmp_path):
    from finetune.config import TrainConfig
    from ui.finetune_tab import command_text

    cfg = TrainConfig(model="demo", data=str(ROOT / "data" / "train_sample.jsonl"), max_steps=3, packing=False)
    (tmp_path / "run.yaml").write_text(command_text(cfg, tmp_path / "runs"), encoding="utf-8")
    loaded = TrainConfig.load(tmp_path / "run.yaml")
    assert loaded == cfg
    assert "python -m finetune train --config run.yaml" in (tmp_path / "run.yaml").read_text(encoding="utf-8")


def test_demo_model_start_message_says_cached(demo_model, capsys):
    import app

    app.prepare_demo_model()
    out = capsys.readouterr().out
    assert out.startswith("Demo model: cached at ") and "about" not in out


def test_an_open_app_says_how_to_turn_logins_on(tmp_path):
    import app

    hint = app.logins_hint(tmp_path / "data")
    assert f"python -m hosting.users add NAME --role admin --data-dir {tmp_path / 'data'}" in hint
    assert "restart" in hint


def test_piping_into_head_ends_quietly():
    # `true` exits without reading: every write of the report meets a closed pipe
    done = subprocess.run(f"{sys.executable} -m evaluation score --ref data/mc_sample.jsonl "
                          "--pred data/mc_sample_predictions.jsonl | true", shell=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr, done.stderr



# ---------------------------------------------------------------------------------------------------------------
# Exit statuses: one definition (safeio.ExitStatus), the README's one table, and every command driven to each status
# the table gives it.

def readme_exit_table() -> dict[int, str]:
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("- **Exit status**, one table for all")
    rows = {}
    for line in text[start:].splitlines()[1:]:
        found = re.match(r"^\| `(\d+)` \| (.+) \|$", line)
        if found:
            rows[int(found.group(1))] = found.group(2)
        elif rows and not line.startswith("|"):
            break
    return rows


def test_the_readme_table_is_the_enum():
    from safeio import EXIT_MEANINGS, ExitStatus

    table = readme_exit_table()
    assert sorted(table) == sorted(int(s) for s in ExitStatus), "README's exit table and safeio.ExitStatus differ"
    assert set(EXIT_MEANINGS) == set(ExitStatus)


# Which statuses each command reaches, as the README's table says; each is driven below (STATUS_CASES), or in the
# named test.
DOCUMENTED = {
    "finetune": {0, 1, 2, 3, 6, 7, 130},
    "evaluation": {0, 1, 2, 3, 4, 5, 6, 130},
    "chat": {0, 2, 6, 130},
    "hosting.users": {0, 1, 2, 3},
    "app.py": {0, 1, 2, 3},
}
ELSEWHERE = {  # (command, status): where it is driven
    ("finetune", 1): "test_finetune_failed_run_and_stopped_run_statuses (a failed run; also an internal error)",
    ("finetune", 130): "test_finetune_failed_run_and_stopped_run_statuses (a stopped run)",
    ("finetune", 7): "test_a_job_another_process_owns_is_busy",
    ("finetune", 6): "tests/test_preflight.py::test_cli_exits_with_the_message (a model of an unknown architecture)",
    ("evaluation", 6): "tests/test_preflight.py::test_cli_exits_with_the_message (`predict`, a model too large)",
    ("chat", 0): "tests/test_readme.py runs the README's `python -m chat` commands",
    ("evaluation", 0): "tests/test_check.py (`score` and `check` through main(): 0, 3, 4, 5)",
    ("evaluation", 4): "tests/test_check.py, tests/test_fuzz_files.py (a real process: predictions nested too deep)",
    ("evaluation", 5): "tests/test_check.py, tests/test_score_cli.py (a real process: a missing prediction)",
    ("evaluation", 1): "the last-resort handler of evaluation/cli.py main(): an internal error (a bug), by design "
                       "not reachable from a command line",
    ("evaluation", 130): "test_interrupted_evaluation_and_chat_exit_130",
    ("chat", 130): "test_interrupted_evaluation_and_chat_exit_130",
    ("app.py", 0): "tests/test_readme.py starts `python app.py` and stops it (SIGTERM: a clean exit)",
}


def _status_cases(tmp: Path) -> list[tuple[str, int, list[str], dict]]:
    """(command, expected status, argv after `python`, extra env) for cheap invocations: bad flags, malformed files,
    unknown model paths."""
    data = ROOT / "data"
    (tmp / "broken.jsonl").write_text('{"question": "q", "options": {"A": "a"}, "answer": "A"}\n{broken\n', "utf-8")
    (tmp / "norows.jsonl").write_text('{"foo": 1}\n{"foo": 2}\n', "utf-8")
    (tmp / "broken.yaml").write_text("model: [demo\n", "utf-8")
    (tmp / "users.yaml").write_text("users:\n  - name: [x\n", "utf-8")
    (tmp / "a_file").write_text("not a folder", "utf-8")
    import json

    refs = [json.loads(l) for l in (data / "mc_sample.jsonl").read_text("utf-8").splitlines()]
    (tmp / "good.jsonl").write_text("".join(json.dumps({"id": r["id"], "output": r["answer"]}) + "\n" for r in refs))
    users = ["--file", str(tmp / "users.yaml")]
    return [
        ("finetune", 0, ["-m", "finetune", "presets"], {}),
        ("finetune", 2, ["-m", "finetune", "train", "--no-such-flag"], {}),
        ("finetune", 2, ["-m", "finetune", "stop", "no-such-job", "--data-dir", "runs"], {}),
        ("finetune", 3, ["-m", "finetune", "preview", "--data", str(tmp / "norows.jsonl")], {}),
        ("finetune", 3, ["-m", "finetune", "train", "--config", str(tmp / "broken.yaml")], {}),
        ("finetune", 6, ["-m", "finetune", "merge", "--adapter", "no-such-adapter", "--out", "merged"], {}),
        ("evaluation", 2, ["-m", "evaluation", "run", "--no-such-flag"], {}),
        ("evaluation", 3, ["-m", "evaluation", "score", "--ref", str(tmp / "broken.jsonl"), "--pred",
                           str(tmp / "good.jsonl")], {}),
        ("chat", 2, ["-m", "chat", "--temperature", "-1", "--prompt", "hi"], {}),
        ("chat", 6, ["-m", "chat", "--model", str(tmp / "no-model"), "--prompt", "hi"], {}),
        ("hosting.users", 0, ["-m", "hosting.users", "list", "--file", str(tmp / "none.yaml")], {}),
        ("hosting.users", 1, ["-m", "hosting.users", "add", "bob", "--role", "guest", "--password-stdin", "--file",
                              str(tmp / "a_file" / "users.yaml")], {}),
        ("hosting.users", 2, ["-m", "hosting.users", "remove", "nobody", "--file", str(tmp / "none.yaml")], {}),
        ("hosting.users", 3, ["-m", "hosting.users", "list", *users], {}),
        ("app.py", 1, [str(ROOT / "app.py"), "--data-dir", str(tmp / "a_file" / "runs")], {}),
        ("app.py", 2, [str(ROOT / "app.py")], {"MEDTUNE_MAX_ROWS": "many"}),
        ("app.py", 3, [str(ROOT / "app.py"), "--users", str(tmp / "users.yaml")], {}),
    ]


def test_every_command_reaches_each_status_it_documents(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    cases = _status_cases(tmp_path)
    covered = {(c, s) for c, s, _, _ in cases} | set(ELSEWHERE)
    assert covered == {(c, s) for c, statuses in DOCUMENTED.items() for s in statuses}
    assert set().union(*DOCUMENTED.values()) == set(readme_exit_table())  # every status has a command that uses it
    base = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "MEDTUNE_DATA_DIR": "",
            "MEDTUNE_USERS_FILE": "", "MEDTUNE_ADMIN_PASSWORD": "", "MEDTUNE_USERS": ""}

    def run(case):
        command, want, argv, env = case
        done = subprocess.run([sys.executable, *argv], cwd=tmp_path, input="pw\n", capture_output=True, text=True,
                              timeout=120, env={**base, **env})
        return case, done

    failures = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        for (command, want, argv, _), done in pool.map(run, cases):
            if done.returncode != want or "Traceback" in done.stderr:
                failures.append(f"{command} {' '.join(argv[1:])}: exit {done.returncode}, want {want}\n"
                                f"{done.stderr[-800:]}")
    assert not failures, "\n\n".join(failures)


def test_finetune_failed_run_and_stopped_run_statuses():
    from jobs.cli import finished_status
    from safeio import ExitStatus

    assert finished_status("completed", ExitStatus.OK) == 0
    assert finished_status("stopped", ExitStatus.OK) == 130  # Stop / Ctrl-C: a checkpoint, resumable
    assert finished_status("failed", ExitStatus.INPUT_MALFORMED) == 3  # the job process's own status
    assert finished_status("failed", 0) == 1  # failed without one (killed): a failed run


def test_a_job_another_process_owns_is_busy(tmp_path):
    from finetune.config import TrainConfig
    from jobs.files import create_job
    from jobs.process import OwnerLock

    files = create_job(TrainConfig(model="demo", data=str(ROOT / "data" / "train_sample.jsonl"), max_steps=1),
                       tmp_path / "runs", job_id="held-1")
    lock = OwnerLock(files).acquire()  # this process owns it, as the app's would
    try:
        done = _cli("finetune", "train", "--resume", "held-1", "--data-dir", str(tmp_path / "runs"), cwd=tmp_path)
    finally:
        lock.release()
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr


def test_interrupted_evaluation_and_chat_exit_130(tmp_path, tiny_chat_model):
    import signal
    import time

    def at_a_terminal():
        # Ctrl-C as at a terminal: a non-interactive shell starts background jobs (CI's own runner, for one) with
        # SIGINT ignored, the children inherit that, and Python then leaves SIGINT ignored too.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    run = subprocess.Popen([sys.executable, "-m", "evaluation", "run", "--model", str(tiny_chat_model), "--data",
                            str(ROOT / "data" / "qa_sample.jsonl"), "--out", "o", "--batch-size", "1",
                            "--max-new-tokens", "96", "--data-dir", "runs"], preexec_fn=at_a_terminal,
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chat = subprocess.Popen([sys.executable, "-m", "chat", "--model", str(tiny_chat_model), "--data-dir", "runs"],
                            cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=at_a_terminal)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "o").glob("*/*/items.jsonl")) or \
                not list(tmp_path.glob("o/*/*/items.jsonl"))[0].read_text().strip():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()[1][-2000:]
            time.sleep(0.2)
        run.send_signal(signal.SIGINT)  # after the first batch is saved, as a user's Ctrl-C
        assert chat.stderr.readline().startswith("chatting with")  # at its prompt
        chat.send_signal(signal.SIGINT)
        _, run_err = run.communicate(timeout=60)
        _, chat_err = chat.communicate(timeout=60)
    finally:
        for proc in (run, chat):
            if proc.poll() is None:
                proc.kill()
    assert run.returncode == 130 and "run the same command again to resume" in run_err, run_err[-2000:]
    assert chat.returncode == 130 and "Traceback" not in chat_err, chat_err[-2000:]


def test_finetune_reads_medtune_model_like_every_command(monkeypatch, tmp_path, tiny_chat_model, capsys):
    from finetune.__main__ import build_parser, cmd_preview, config_from_args

    parse = build_parser().parse_args
    monkeypatch.delenv("MEDTUNE_MODEL", raising=False)
    assert config_from_args(parse(["train", "--data", "d.jsonl"])).model == "demo"  # the default
    monkeypatch.setenv("MEDTUNE_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    assert config_from_args(parse(["train", "--data", "d.jsonl"])).model == "Qwen/Qwen2.5-0.5B-Instruct"  # env
    assert config_from_args(parse(["train", "--model", "demo", "--data", "d.jsonl"])).model == "demo"  # flag wins
    (tmp_path / "run.yaml").write_text("model: my/model\ndata: d.jsonl\n", encoding="utf-8")
    assert config_from_args(parse(["train", "--config", str(tmp_path / "run.yaml")])).model == "my/model"
    # preview: the environment's model renders and counts tokens, as --model does; without either, rows only
    data = str(ROOT / "data" / "train_sample.jsonl")
    monkeypatch.setenv("MEDTUNE_MODEL", str(tiny_chat_model))
    cmd_preview(parse(["preview", "--data", data, "-n", "1"]))
    with_env = capsys.readouterr().out
    monkeypatch.delenv("MEDTUNE_MODEL")
    cmd_preview(parse(["preview", "--data", data, "-n", "1"]))
    without = capsys.readouterr().out
    cmd_preview(parse(["preview", "--data", data, "-n", "1", "--model", str(tiny_chat_model)]))
    assert with_env == capsys.readouterr().out != without
