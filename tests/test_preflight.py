"""Bad models get a clear message before any weight loads (issue 16, "Bad input"): an architecture transformers does
not know, remote code without --trust-remote-code, a model too large for the free memory, a tokenizer without a
chat template. Checked on folders written here (config and tokenizer files only: preflight never reads weights),
through the library, the command-line tools (exit status and message) and the running app (which answers the next
request)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.preflight import FREE_BYTES_ENV, PreflightError, preflight, template_notice

ROOT = Path(__file__).resolve().parent.parent
# Qwen2.5-7B's published config numbers: 7.6B parameters, 15.2 GB of weights in bf16.
QWEN_7B = {"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064, "tie_word_embeddings": False}
TINY = {**QWEN_7B, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 400}


def model_dir(tmp_path: Path, name: str, config: dict, tokenizer_config: dict | None = None) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if tokenizer_config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    return folder


def check(folder: Path, **kwargs) -> None:
    args = dict(trust_remote_code=False, dtype="bfloat16", device="cpu", free_bytes=10**12) | kwargs
    preflight(str(folder), str(folder), **args)


@pytest.fixture
def bad_models(tmp_path) -> dict[str, Path]:
    return {
        "unknown": model_dir(tmp_path, "unknown-arch", {**TINY, "model_type": "medtune_nonexistent_arch"}),
        "remote": model_dir(tmp_path, "remote-code", {**TINY, "model_type": "medtune_custom",
                                                      "auto_map": {"AutoConfig": "configuration_x.XConfig",
                                                                   "AutoModelForCausalLM": "modeling_x.XForCausalLM"}}),
        "large": model_dir(tmp_path, "qwen-7b-shape", QWEN_7B),
    }


def test_unknown_architecture_is_named_with_what_to_do(bad_models):
    with pytest.raises(PreflightError) as caught:
        check(bad_models["unknown"])
    assert caught.value.code == "unknown_architecture"
    message = str(caught.value)
    assert str(bad_models["unknown"]) in message and "'medtune_nonexistent_arch'" in message
    assert "upgrade transformers" in message


def test_remote_code_needs_trust_remote_code(bad_models):
    with pytest.raises(PreflightError) as caught:
        check(bad_models["remote"])
    assert caught.value.code == "remote_code"
    assert "--trust-remote-code" in str(caught.value) and "AutoModelForCausalLM" in str(caught.value)
    check(bad_models["remote"], trust_remote_code=True)  # asked for: its own code names the architecture
    native = model_dir(bad_models["remote"].parent, "native-with-auto-map",
                       {**TINY, "auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}})
    check(native)  # qwen2 is native: without trust transformers loads its own class, so nothing is refused


def test_too_large_compares_the_estimate_with_the_free_memory(bad_models):
    with pytest.raises(PreflightError) as caught:
        check(bad_models["large"], free_bytes=8 * 2**30)
    params = caught.value.params
    assert caught.value.code == "too_large" and params["params"] == "7.62B"
    assert params["weights"] == "14.2 GiB" and params["free"] == "8.0 GiB" and params["dtype"] == "bfloat16"
    check(bad_models["large"], free_bytes=20 * 2**30)  # bf16 + 20% fits in 20 GB
    with pytest.raises(PreflightError, match="float32"):  # fp32 doubles it
        check(bad_models["large"], free_bytes=20 * 2**30, dtype="float32")
    check(bad_models["large"], free_bytes=8 * 2**30, load_in_4bit=True)  # NF4 fits in 8 GB
    with pytest.raises(PreflightError, match="float32"):  # "auto" (merge): the config's dtype, float32 when unsaid
        check(bad_models["large"], free_bytes=20 * 2**30, dtype="auto")
    os.environ[FREE_BYTES_ENV] = str(2**30)  # the injectable figure the CLI and app tests use
    try:
        with pytest.raises(PreflightError, match="1.0 GiB is free"):
            check(bad_models["large"], free_bytes=None)
    finally:
        del os.environ[FREE_BYTES_ENV]


def test_measured_free_memory_lets_a_tiny_model_through(tmp_path):
    check(model_dir(tmp_path, "tiny", TINY), free_bytes=None)  # psutil / cgroup: a 2-layer model always fits


def test_a_tokenizer_without_chat_template_is_named(tmp_path):
    bare = model_dir(tmp_path, "base-no-template", TINY, {"tokenizer_class": "PreTrainedTokenizerFast"})
    notice = template_notice("base-no-template", str(bare))
    assert notice and "base-no-template" in notice and "no chat template" in notice and "ChatML" in notice
    chat = model_dir(tmp_path, "chat", TINY, {"chat_template": "{{ messages }}"})
    assert template_notice("chat", str(chat)) is None


def run_cli(args: list[str], **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)


def test_cli_exits_with_the_message(bad_models, tmp_path):
    done = run_cli(["-m", "finetune", "train", "--model", str(bad_models["unknown"]), "--data",
                    "data/train_sample.jsonl", "--data-dir", str(tmp_path / "data"), "--max-steps", "1"])
    output = done.stdout + done.stderr  # the job prints its error line beside its log, on stdout
    assert done.returncode == 6, output  # safeio.ExitStatus.MODEL_UNUSABLE, as every command
    assert "architecture 'medtune_nonexistent_arch' is unknown" in output and "Traceback" not in output
    status = json.loads(next((tmp_path / "data" / "jobs").glob("*/status.json")).read_text(encoding="utf-8"))
    assert status["state"] == "failed" and status["error_code"] == "preflight.unknown_architecture"
    done = run_cli(["-m", "evaluation", "predict", "--model", str(bad_models["large"]), "--data",
                    "data/mc_sample.jsonl", "--out", str(tmp_path / "pred.jsonl")], **{FREE_BYTES_ENV: str(2**30)})
    assert done.returncode == 6 and "1.0 GiB is free" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "pred.jsonl").exists()


def test_app_shows_the_message_in_the_page_language_and_stays_up(bad_models, tmp_path, medtune_home):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from ui.context import AppContext
    from ui.layout import build_app

    base = str(bad_models["remote"])
    app = build_app(AppContext(model=base, data_dir=tmp_path / "data", lang="zh")).queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(url, verbose=False)
        for _ in range(2):  # the second request is answered the same way: nothing half-loaded stayed behind
            with pytest.raises(AppError) as caught:
                client.predict(base, api_name="/models_load")
            assert base in str(caught.value) and "--trust-remote-code" in str(caught.value)
            assert "本应用从不运行模型自带的代码" in str(caught.value)
        with pytest.raises(AppError, match="is not loaded"):  # another handler answers: nothing was half-loaded
            client.predict(base, api_name="/models_unload")
    finally:
        app.close()


def test_a_base_without_template_loads_and_the_load_handler_says_chatml_stands_in(tiny_chat_model, tmp_path):
    import shutil

    import gradio as gr

    from ui.chat_tab import ChatHandlers
    from ui.context import AppContext

    base = tmp_path / "tiny-no-template"
    shutil.copytree(tiny_chat_model, base)
    (base / "chat_template.jinja").unlink(missing_ok=True)
    tokenizer_config = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer_config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    handlers = ChatHandlers(AppContext(model=str(base), data_dir=tmp_path / "data", lang="zh"))
    note, _ = handlers.load_model(str(base), gr.Request(username="admin"))
    assert f"模型 {base}：其分词器没有对话模板" in note
    assert "<|im_start|>" in handlers.registry.tokenizer.chat_template  # ChatML stood in


def test_a_refused_training_job_shows_in_the_page_language():
    from jobs.progress import JobProgress
    from ui.finetune_tab import status_text

    status = {"state": "failed", "error": "model m: ...", "error_code": "preflight.too_large",
              "error_params": {"model": "m", "params": "7.62B", "needed": "17.0 GB", "weights": "14.2 GB",
                               "overhead": "20", "free": "8.0 GB", "dtype": "bfloat16", "device": "cuda:0"}}
    assert "但只剩 8.0 GB 可用" in status_text(JobProgress.from_record(status), "zh")
    assert "only 8.0 GB is free" in status_text(JobProgress.from_record(status), "en")
