"""The repository deploys as a Hugging Face Space without edits: README.md's front matter and requirements.txt agree
with pyproject.toml; on ZeroGPU (the `spaces` package present and SPACES_ZERO_GPU set) training is refused with a
clear message, checked with a stand-in `spaces` module (untested on a real Space)."""

from __future__ import annotations

import re
import sys
import tomllib
import types
from pathlib import Path

import gradio as gr
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The hardware names Hugging Face accepts for suggested_hardware (its Spaces configuration reference).
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "a10g-small", "a10g-large",
            "a10g-largex2", "a10g-largex4", "a100-large", "zero-a10g", "l40sx1", "l40sx4", "l40sx8", "h100"}


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with the Space's YAML front matter between --- lines"
    return yaml.safe_load(match.group(1))


def pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(dep.split("==") for dep in deps)


def test_front_matter_matches_the_project():
    meta = front_matter()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["sdk"] == "gradio" and (ROOT / meta["app_file"]).is_file() and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == pins()["gradio"]
    minimum = project["requires-python"].removeprefix(">=")
    assert str(meta["python_version"]) == minimum
    assert meta["suggested_hardware"] in HARDWARE
    # The README's own first commands stay true after the front matter.
    body = (ROOT / "README.md").read_text(encoding="utf-8").split("---\n", 2)[2]
    assert "pip install -e . && python app.py" in body and 'pip install -e ".[test]" && python -m pytest' in body


def test_requirements_agree_with_pyproject():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    required = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert required == pins()


def test_a_space_listens_on_every_interface(monkeypatch):
    import app

    monkeypatch.delenv("MEDTUNE_HOST", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert app.parse_args([]).host == "127.0.0.1"
    monkeypatch.setenv("SPACE_ID", "someone/medtune")
    assert app.parse_args([]).host == "0.0.0.0"


@pytest.fixture
def fake_spaces(monkeypatch):
    """A stand-in for the `spaces` package: records the durations its GPU decorator is given."""
    module = types.ModuleType("spaces")
    module.__spec__ = types.SimpleNamespace(name="spaces", loader=None, submodule_search_locations=None,
                                            parent="", origin="stand-in", has_location=False, cached=None)
    module.durations = []

    def GPU(duration=60):  # noqa: N802 - the package's name
        module.durations.append(duration)
        return lambda fn: fn

    module.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", module)
    return module


def test_zerogpu_refuses_training_and_wraps_gpu_work(fake_spaces, monkeypatch):
    from ui import zerogpu

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    zerogpu.refuse_training("en")  # the package alone is not ZeroGPU
    assert zerogpu.gpu(60)(len) is len and fake_spaces.durations == []
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zerogpu.zerogpu_active()
    with pytest.raises(gr.Error, match="not available on this ZeroGPU Space"):
        zerogpu.refuse_training("en")
    with pytest.raises(gr.Error, match="ZeroGPU Space 不支持训练"):
        zerogpu.refuse_training("zh")
    zerogpu.gpu(zerogpu.EVAL_SECONDS)(len)
    assert fake_spaces.durations == [zerogpu.EVAL_SECONDS]


def test_the_fine_tune_tab_refuses_to_start_on_zerogpu(fake_spaces, monkeypatch, tmp_path):
    from ui.context import AppContext
    from ui.finetune_tab import do_start

    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    ctx = AppContext(model="demo", data_dir=tmp_path)
    with pytest.raises(gr.Error, match="ZeroGPU"):
        do_start(None, "demo", None, "train_sample.jsonl", "auto", "", ctx=ctx)
    assert not (tmp_path / "jobs").exists() or not any((tmp_path / "jobs").iterdir())  # nothing was queued
