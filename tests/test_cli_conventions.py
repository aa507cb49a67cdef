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
    assert done.returncode == 1 and "Traceback" not in done.stderr and "EOFError" not in done.stderr
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
