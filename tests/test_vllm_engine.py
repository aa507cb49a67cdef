"""Smoke tests of a real vLLM server (CPU build) with plain httpx: what the app's OpenAI-compatible model layer relies on.

The server is tests/vllm_fixtures.py's `vllm_server` (one start per session, the demo model plus one random LoRA
adapter served by name). The in-process answers are computed here with transformers and peft directly, not through
the app's code, so a disagreement points at the engine or at our assumptions about it, not at our client.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

PROMPT = [{"role": "user", "content": "高血压患者饮食要注意什么？"}]
MAX_TOKENS = 24
TIMEOUT = httpx.Timeout(120.0)


@pytest.fixture(scope="module")
def http(vllm_server):
    with httpx.Client(base_url=vllm_server.base_url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def local(vllm_server):
    """In-process transformers models of what the server serves: name -> (model, tokenizer)."""
    return LocalModels(vllm_server.demo_dir, {vllm_server.adapter_name: vllm_server.adapter_dir})


class LocalModels:
    """The demo model in this process, bare or with one PEFT adapter, loaded on first use."""

    def __init__(self, demo_dir, adapters):
        from transformers import AutoTokenizer

        self.demo_dir, self.adapters, self.loaded = demo_dir, dict(adapters), {}
        self.tokenizer = AutoTokenizer.from_pretrained(demo_dir)

    def model(self, name: str | None):
        """None is the base. Each adapter gets its own copy of the base: peft changes the model it wraps."""
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        if name not in self.loaded:
            model = AutoModelForCausalLM.from_pretrained(self.demo_dir, dtype=torch.float32)
            if name is not None:
                model = PeftModel.from_pretrained(model, self.adapters[name])
            self.loaded[name] = model.eval()
        return self.loaded[name]

    def chat_ids(self, messages) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def greedy(self, name: str | None, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
        import torch

        with torch.no_grad():
            out = self.model(name).generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids),
                                            dtype=torch.long), max_new_tokens=max_new_tokens, do_sample=False)
        return strip_eos(out[0, len(prompt_ids):].tolist(), self.tokenizer)

    def prompt_logprobs(self, name: str | None, ids: list[int]) -> list[float]:
        """log p(ids[i] | ids[:i]) for i >= 1, from one forward pass."""
        import torch

        with torch.no_grad():
            logits = self.model(name)(torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits[:-1], dim=-1)
        return logprobs.gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1).tolist()


def strip_eos(ids: list[int], tokenizer) -> list[int]:
    """Up to the first end-of-sequence token, without it: generate pads after it, vLLM may or may not return it."""
    eos = tokenizer.eos_token_id
    return ids[: ids.index(eos)] if eos in ids else ids


def chat(http, model: str, messages, **extra) -> dict:
    response = http.post("/chat/completions", json={"model": model, "messages": messages, "max_tokens": MAX_TOKENS,
                                                    "temperature": 0, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def stream_chat(http, model: str, messages) -> list[str]:
    """The content pieces of a streamed (SSE) chat completion, checking the stream's framing on the way."""
    body = {"model": model, "messages": messages, "max_tokens": MAX_TOKENS, "temperature": 0, "stream": True}
    pieces, done = [], False
    with http.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                continue
            assert line.startswith("data: "), line
            if line == "data: [DONE]":
                done = True
                continue
            chunk = json.loads(line[len("data: "):])
            assert chunk["object"] == "chat.completion.chunk" and chunk["model"] == model
            pieces.append(chunk["choices"][0]["delta"].get("content") or "")
    assert done, "the stream did not end with data: [DONE]"
    return [p for p in pieces if p]


def test_models_lists_base_and_adapter_with_parent(http, vllm_server):
    models = {m["id"]: m for m in http.get("/models").json()["data"]}
    assert set(models) == {vllm_server.base_name, vllm_server.adapter_name}
    assert models[vllm_server.base_name]["parent"] is None
    assert models[vllm_server.adapter_name]["parent"] == vllm_server.base_name
    assert models[vllm_server.adapter_name]["root"] == str(vllm_server.adapter_dir)


def test_chat_plain_and_streaming_for_base_and_adapter(http, vllm_server):
    answers = {}
    for name in (vllm_server.base_name, vllm_server.adapter_name):
        reply = chat(http, name, PROMPT)
        assert reply["model"] == name and reply["choices"][0]["finish_reason"] in {"stop", "length"}
        answers[name] = reply["choices"][0]["message"]["content"]
        pieces = stream_chat(http, name, PROMPT)
        # greedy, so the stream must spell the same answer, and token by token, not in one final piece
        assert "".join(pieces) == answers[name]
        assert len(pieces) > 1, pieces
    assert answers[vllm_server.base_name] != answers[vllm_server.adapter_name], "the adapter changed nothing"


def test_greedy_equals_transformers_for_base_and_adapter(http, vllm_server, local):
    """Same prompt tokens, same template: vLLM's greedy tokens equal transformers' `generate` (and peft's)."""
    prompt_ids = local.chat_ids(PROMPT)
    for name, local_name in ((vllm_server.base_name, None), (vllm_server.adapter_name, vllm_server.adapter_name)):
        expected = local.greedy(local_name, prompt_ids, MAX_TOKENS)
        assert expected, "the in-process answer is empty: the comparison would prove nothing"
        # the chat route applies the model's own template: it must produce our prompt tokens
        reply = chat(http, name, PROMPT, return_token_ids=True)
        assert reply["prompt_token_ids"] == prompt_ids
        assert strip_eos(reply["choices"][0]["token_ids"], local.tokenizer) == expected
        assert reply["choices"][0]["message"]["content"] == local.tokenizer.decode(expected, skip_special_tokens=True)
        # and the completions route on the very same token ids
        response = http.post("/completions", json={"model": name, "prompt": prompt_ids, "max_tokens": MAX_TOKENS,
                                                   "temperature": 0, "return_token_ids": True})
        assert response.status_code == 200, response.text
        assert strip_eos(response.json()["choices"][0]["token_ids"], local.tokenizer) == expected


def test_completions_logprobs_and_prompt_logprobs(http, vllm_server, local):
    """Top-N log-probabilities of generated tokens, and echo + max_tokens 0: those of the prompt's own tokens,
    equal to transformers' log-softmax (float32 on both sides; CPU kernels differ in summation order)."""
    ids = local.chat_ids(PROMPT) + local.tokenizer.encode("低盐饮食", add_special_tokens=False)
    for name, local_name in ((vllm_server.base_name, None), (vllm_server.adapter_name, vllm_server.adapter_name)):
        # top_logprobs is a dict keyed by the token's text: byte-level tokens that are half a UTF-8 character all
        # decode to "" and collide (seen here: a top-2 came back with one key). return_tokens_as_token_ids keys
        # them "token_id:N" instead, which is what a client scoring option letters should ask for.
        response = http.post("/completions", json={"model": name, "prompt": ids, "max_tokens": 3, "temperature": 0,
                                                   "logprobs": 2, "return_tokens_as_token_ids": True})
        assert response.status_code == 200, response.text
        logprobs = response.json()["choices"][0]["logprobs"]
        assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == len(logprobs["top_logprobs"]) >= 1
        for token, value, top in zip(logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"]):
            assert token.startswith("token_id:") and all(key.startswith("token_id:") for key in top)
            # greedy: the chosen token is the most likely one; vLLM adds it to the top N when it is not among them
            assert 2 <= len(top) <= 3 and top[token] == value == pytest.approx(max(top.values()), abs=1e-6)

        response = http.post("/completions", json={"model": name, "prompt": ids, "max_tokens": 0, "echo": True,
                                                   "logprobs": 0, "temperature": 0})
        assert response.status_code == 200, response.text
        echoed = response.json()["choices"][0]["logprobs"]["token_logprobs"]
        assert len(echoed) == len(ids) and echoed[0] is None  # the first token has no context to be scored in
        expected = local.prompt_logprobs(local_name, ids)
        assert all(math.isfinite(v) for v in echoed[1:])
        assert echoed[1:] == pytest.approx(expected, abs=2e-4), name


def test_adapter_loaded_at_run_time(http, vllm_server, local, tmp_path):
    """/v1/load_lora_adapter (VLLM_ALLOW_RUNTIME_LORA_UPDATING=1): listed with its parent, answers like peft does,
    and /v1/unload_lora_adapter puts the shared server back as the other tests expect it."""
    from chat_fixtures import build_adapter

    name = "runtime-lora"
    adapter_dir = build_adapter(vllm_server.demo_dir, tmp_path / name, seed=1)
    local.adapters[name] = adapter_dir
    response = http.post("/load_lora_adapter", json={"lora_name": name, "lora_path": str(adapter_dir)})
    assert response.status_code == 200, response.text
    try:
        models = {m["id"]: m for m in http.get("/models").json()["data"]}
        assert models[name]["parent"] == vllm_server.base_name
        prompt_ids = local.chat_ids(PROMPT)
        reply = chat(http, name, PROMPT, return_token_ids=True)
        assert strip_eos(reply["choices"][0]["token_ids"], local.tokenizer) == local.greedy(name, prompt_ids,
                                                                                           MAX_TOKENS)
        # loading the same name twice is refused, not silently replaced
        again = http.post("/load_lora_adapter", json={"lora_name": name, "lora_path": str(adapter_dir)})
        assert again.status_code == 400, again.text
    finally:
        unloaded = http.post("/unload_lora_adapter", json={"lora_name": name})
    assert unloaded.status_code == 200, unloaded.text
    assert name not in {m["id"] for m in http.get("/models").json()["data"]}
    gone = http.post("/chat/completions", json={"model": name, "messages": PROMPT, "max_tokens": 2})
    assert gone.status_code == 404, gone.text  # an unknown model name: what the app shows as "404 unknown model"
