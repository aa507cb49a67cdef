"""`python -m chat`: one-shot prompts, --compare, and the interactive loop fed through stdin."""

import subprocess
import sys
from pathlib import Path

import pytest
from chat_fixtures import build_adapter, build_tiny_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat-cli")
    base = build_tiny_model(root / "base")
    build_adapter(base, root / "data" / "adapters" / "job-lora", seed=1)
    outside = build_adapter(base, root / "elsewhere" / "path-lora", seed=2)
    return root, base, outside


def chat(*args, stdin=""):
    done = subprocess.run([sys.executable, "-m", "chat", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=180)
    return done.returncode, done.stdout, done.stderr


def test_compare_prints_every_model_and_interactive_loop(setup):
    root, base, outside = setup
    common = ["--model", str(base), "--data-dir", str(root / "data"), "--max-new-tokens", "8"]
    code, out, err = chat(*common, "--adapter", "job-lora", "--adapter", str(outside), "--compare",
                          "--prompt", "头痛怎么办？")
    assert code == 0, err
    assert f"=== {base} ===" in out and "=== job-lora ===" in out and "=== path-lora ===" in out
    assert "tokens/s" in out


def test_interactive_loop_commands(setup, capsys, monkeypatch):
    import io

    from chat.cli import main

    root, base, _ = setup
    monkeypatch.setattr(sys, "stdin", io.StringIO("你好\n/models\n/use path-x\n/reset\n/help\n/exit\n"))
    assert main(["--model", str(base), "--data-dir", str(root / "data"), "--max-new-tokens", "8",
                 "--adapter", "job-lora"]) == 0
    out, err = capsys.readouterr()
    assert "chatting with job-lora" in err and "tokens/s" in out
    assert "* job-lora  [adapter]" in out and "error: adapter 'path-x'" in out and "/use NAME" in out


def test_bad_adapter_is_a_clear_error(setup, capsys):
    from chat.cli import main

    root, base, _ = setup
    assert main(["--model", str(base), "--adapter", str(root / "nope"), "--prompt", "x"]) == 6  # a model
    err = capsys.readouterr().err
    assert "error: adapter" in err and "nope" in err
