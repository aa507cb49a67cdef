"""models/catalog.py: parameter counts from config numbers (against real models built from configs), memory,
fits, the Hugging Face cache offline (a real cache layout), and downloads: refused offline, cancelled for real."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import transformers

from models import catalog
from models.catalog import ModelShape, load_catalog, memory_needed, parameters, weight_bytes

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
            vocab_size=500)


def real_count(config) -> int:
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())  # tied weights are listed once


@pytest.mark.parametrize("config", [
    transformers.Qwen2Config(**TINY, tie_word_embeddings=True),
    transformers.Qwen3Config(**TINY, head_dim=32, tie_word_embeddings=True),  # head_dim != hidden / heads, q/k norms
    transformers.LlamaConfig(**TINY, tie_word_embeddings=False),
    # GLM-4-9B-Chat-hf's architecture
    transformers.GlmConfig(**TINY, head_dim=16, pad_token_id=0, tie_word_embeddings=False),
    transformers.Ernie4_5Config(**TINY, head_dim=32, pad_token_id=0, tie_word_embeddings=True),
], ids=["qwen2", "qwen3", "llama-untied", "glm", "ernie4_5"])
def test_parameters_from_a_config_equal_the_built_model(config):
    shape = ModelShape.from_config(config.to_dict())
    assert parameters(shape)["total"] == real_count(config)


def test_parameters_of_the_demo_model(demo_model):
    config = json.loads((demo_model / "config.json").read_text())
    model = transformers.AutoModelForCausalLM.from_pretrained(demo_model)
    assert parameters(ModelShape.from_config(config))["total"] == sum(p.numel() for p in model.parameters())


def test_the_catalog_gives_the_published_sizes():
    models = {m.id: m for m in load_catalog()}
    assert {"Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen3-1.7B", "THUDM/glm-4-9b-chat-hf",
            "internlm/internlm3-8b-instruct", "baidu/ERNIE-4.5-0.3B-PT",
            "meta-llama/Llama-3.2-3B-Instruct"} <= set(models)
    # The counts the model cards state: 494,032,768 and 7,615,616,512 exactly; the others to the card's rounding.
    assert parameters(models["Qwen/Qwen2.5-0.5B-Instruct"].shape)["total"] == 494_032_768
    assert parameters(models["Qwen/Qwen2.5-7B-Instruct"].shape)["total"] == 7_615_616_512
    for name, billions in [("Qwen/Qwen2.5-1.5B-Instruct", 1.54), ("Qwen/Qwen2.5-3B-Instruct", 3.09),
                           ("Qwen/Qwen3-4B", 4.02), ("meta-llama/Llama-3.2-1B-Instruct", 1.24),
                           ("meta-llama/Llama-3.2-3B-Instruct", 3.21), ("baidu/ERNIE-4.5-0.3B-PT", 0.36),
                           ("THUDM/glm-4-9b-chat-hf", 9.40), ("internlm/internlm3-8b-instruct", 8.80)]:
        assert round(parameters(models[name].shape)["total"] / 1e9, 2) == billions, name
    assert models["internlm/internlm3-8b-instruct"].remote_code and models["meta-llama/Llama-3.2-1B-Instruct"].gated


def test_memory_and_fits():
    shape = {m.id: m for m in load_catalog()}["Qwen/Qwen2.5-7B-Instruct"].shape
    assert weight_bytes(shape, "bf16") == 2 * 7_615_616_512
    four = weight_bytes(shape, "4bit")
    # the decoder's linears at ~4.13 bits, the 1.09B embedding + LM head parameters still at 2 bytes
    assert 4.5e9 < four < 5.6e9 and memory_needed(shape, "4bit") < memory_needed(shape, "bf16")
    model = {m.id: m for m in load_catalog()}["Qwen/Qwen2.5-7B-Instruct"]
    need = memory_needed(shape, "bf16")
    assert catalog.fits(model, "bf16", need) is True and catalog.fits(model, "bf16", need - 1) is False
    assert catalog.fits(model, "4bit", 8 * 2**30) is True and catalog.fits(model, "bf16", None) is None
    with pytest.raises(ValueError, match="quant"):
        weight_bytes(shape, "int3")


def test_a_broken_catalog_entry_is_named(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": [{"id": "a/b", "hidden": 8}]}))
    with pytest.raises(ValueError, match=r"catalog.json: models\[0\] \(a/b\): missing field 'layers'"):
        load_catalog(path)


def fake_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """The Hugging Face cache's own layout (blobs by hash, a snapshot of symlinks, refs/main), as a download leaves."""
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    (folder / "blobs").mkdir()
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(blob)
    return snapshot


def test_cache_lookup_list_and_delete_offline(tmp_path):
    cache = tmp_path / "hub"
    snapshot = fake_hub_cache(cache, "Qwen/Qwen3-0.6B", {"config.json": b"{}", "model.safetensors": b"x" * 4096})
    fake_hub_cache(cache, "someone/config-only", {"config.json": b"{}"})  # an interrupted download: no weights
    assert catalog.cached_path("Qwen/Qwen3-0.6B", cache) == snapshot
    assert catalog.cached_path("someone/config-only", cache) is None
    assert catalog.cached_path("Qwen/Qwen2.5-0.5B-Instruct", cache) is None
    assert catalog.cached_models(cache) == {"Qwen/Qwen3-0.6B": 4098}
    assert catalog.delete_cached("Qwen/Qwen3-0.6B", cache) >= 4096
    assert catalog.cached_path("Qwen/Qwen3-0.6B", cache) is None and catalog.cached_models(cache) == {}
    assert catalog.delete_cached("Qwen/Qwen3-0.6B", cache) == 0
    assert catalog.cached_models(tmp_path / "nowhere") == {}


def online(monkeypatch) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # huggingface_hub reads either
        monkeypatch.delenv(name, raising=False)


def test_downloads_are_refused_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="downloads are unavailable"):
        catalog.Download("Qwen/Qwen3-0.6B", tmp_path)


def silent_mirror(monkeypatch) -> tuple[socket.socket, list]:
    """HF_ENDPOINT pointed at a local mirror that accepts connections and never answers (the network is "on"):
    a download child hangs there until cancelled. Returns (the server socket, the connections it accepted)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: held.extend(server.accept() for _ in range(8)), daemon=True).start()
    online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    return server, held


def test_a_download_can_be_cancelled(tmp_path, monkeypatch):
    """A mirror that accepts the connection and never answers: the download is running, then cancelled at once."""
    server, held = silent_mirror(monkeypatch)
    download = catalog.Download("Qwen/Qwen3-0.6B", tmp_path, expected_bytes=1000)
    try:
        deadline = time.time() + 30
        while not held and time.time() < deadline:  # the child reached the mirror
            time.sleep(0.1)
        assert held, download.proc.stderr.read() if download.proc.poll() else "no connection"
        assert download.state() == "running" and download.progress() == 0.0
        start = time.time()
        download.cancel()
        assert download.state() == "cancelled" and time.time() - start < 5
    finally:
        download.cancel()
        server.close()


def test_a_download_from_an_unreachable_mirror_fails_with_a_reason(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    download = catalog.Download("Qwen/Qwen3-0.6B", tmp_path)
    download.proc.wait(timeout=120)
    assert download.state() == "failed" and download.error()
