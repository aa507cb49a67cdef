"""Remote models against real HTTP servers: a scripted one for every failure (down, killed mid-stream, slow, 401,
404, 429 then success, garbage SSE), endpoint flags and endpoints.yaml errors, and panes that mix in-process and
remote models (a failing pane says why; the others finish)."""

from __future__ import annotations

import os
import time

import pytest
from chat_fixtures import build_tiny_model
from remote_fixtures import free_port, start_scripted_server

from chat.panes import stream_panes
from models.directory import ModelDirectory
from models.local.registry import ModelRegistry
from models.remote.client import ClientOptions, OpenAIClient, RemoteError
from models.remote.endpoints import EndpointError, EndpointsFile, parse_endpoint_flags
from models.settings import GenerationSettings

FAST = ClientOptions(timeout_s=1.0, retries=2, backoff_s=0.01)
ASK = [{"role": "user", "content": "头痛怎么办？"}]
SETTINGS = GenerationSettings(max_new_tokens=8)


@pytest.fixture(scope="module")
def server():
    server, url = start_scripted_server()
    yield server, url
    server.shutdown()


def stream(url, model, options=FAST, key_env=None):
    return "".join(OpenAIClient(url, key_env, options, label="test").stream_chat(model, ASK, SETTINGS))


def failure(url, model, options=FAST, key_env=None) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        stream(url, model, options, key_env)
    return caught.value


def test_streams_and_lists_models(server):
    _, url = server
    client = OpenAIClient(url, options=FAST)
    assert list(client.stream_chat("ok", ASK, SETTINGS)) == ["你", "好", "。"]
    assert client.chat("ok", ASK, SETTINGS) == "你好。"
    assert [m["id"] for m in client.models()] == ["ok", "lora"]


def test_failures_say_why(server):
    srv, url = server
    down = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    assert failure(down, "ok").reason == "down"
    assert time.monotonic() - started < 5  # bounded retries, short backoff
    assert failure(url, "slow").reason == "timeout"
    assert failure(url, "404").reason == "unknown_model"
    assert failure(url, "garbage").reason == "malformed"
    killed = failure(url, "killed")
    assert killed.reason in ("malformed", "down") and "test" in str(killed)
    limited = failure(url, "429")
    assert limited.reason == "rate_limited" and srv.calls["429"] == 1 + FAST.retries


def test_429_then_success_is_retried(server):
    srv, url = server
    assert stream(url, "429-then-ok") == "你好。" and srv.calls["429-then-ok"] == 3


def test_key_is_sent_but_never_shown(server, monkeypatch):
    srv, url = server
    monkeypatch.setenv("TEST_ENDPOINT_KEY", "sk-very-secret-123")
    error = failure(url, "401", key_env="TEST_ENDPOINT_KEY")
    assert error.reason == "auth" and "sk-very-secret" not in str(error) and "sk-very-secret" not in repr(error)
    assert srv.seen[-1]["auth"] == "Bearer sk-very-secret-123"
    monkeypatch.delenv("TEST_ENDPOINT_KEY")
    assert "TEST_ENDPOINT_KEY" in str(failure(url, "ok", key_env="TEST_ENDPOINT_KEY"))  # unset: says which variable


def test_endpoint_flags():
    [gpu, bare] = parse_endpoint_flags(["gpu=http://gpu-box:8000/v1", "http://127.0.0.1:9000/v1"], ["gpu=GPU_KEY"])
    assert (gpu.name, gpu.url, gpu.key_env) == ("gpu", "http://gpu-box:8000/v1", "GPU_KEY")
    assert bare.name == "127.0.0.1-9000"
    for flags, keys, words in ((["x=ftp://h"], [], "not an http"), (["x=http://u:pw@h/v1"], [], "no credentials"),
                               (["x=http://h"], ["x=sk-abc!"], "NAME=ENV_VAR"),
                               (["x=http://h"], ["y=K"], "no --endpoint"),
                               (["x=http://h", "x=http://g"], [], "twice")):
        with pytest.raises(EndpointError, match=words):
            parse_endpoint_flags(flags, keys)


def test_endpoints_file_errors_name_line_and_field_and_keep_the_last_good_list(tmp_path):
    path = tmp_path / "endpoints.yaml"
    path.write_text("endpoints:\n  - name: gpu\n    url: http://gpu-box:8000/v1\n    models: [a, b]\n")
    source = EndpointsFile(path)
    [good] = source.current()
    assert good.models == ("a", "b") and source.error is None
    cases = [("endpoints:\n  - name: gpu\n    url: ftp://x\n", "line 3, field url"),
             ("endpoints:\n  - name: gpu\n    url: http://h/v1\n    api_key: sk-1\n", "line 4, field api_key"),
             ("endpoints:\n  - url: http://h/v1\n", "line 2, field name"),
             ("endpoints:\n  - name: gpu\n    url: http://h/v1\n    timeout_s: -1\n", "line 4, field timeout_s"),
             ("endpoints: [\n", "not valid YAML")]
    for i, (text, where) in enumerate(cases):
        path.write_text(text)
        os.utime(path, ns=(i * 10**9 + 10**18, i * 10**9 + 10**18))  # a new mtime even within one clock tick
        assert source.current() == [good]  # the last good list stays
        assert str(path) in source.error and where in source.error, source.error
    path.write_text("endpoints:\n  - name: other\n    url: http://other/v1\n")
    assert [e.name for e in source.current()] == ["other"] and source.error is None


def test_mixed_panes_a_failing_remote_pane_says_why_and_the_others_finish(server, tmp_path):
    _, url = server
    registry = ModelRegistry(str(build_tiny_model(tmp_path / "base")))
    directory = ModelDirectory(registry, parse_endpoint_flags([f"lab={url}"]),
                               endpoints_file=tmp_path / "endpoints.yaml")
    (tmp_path / "endpoints.yaml").write_text(f"endpoints:\n  - name: flaky\n    url: {url}\n"
                                             "    models: [killed, '404']\n    retries: 0\n")
    names = directory.usable_models()
    assert names[0] == registry.base_name
    assert {"ok@lab", "lora@lab", "killed@flaky", "404@flaky"} <= set(names)
    assert directory.where("lora@lab") == "lab" and directory.where(registry.base_name) == "in-process"
    panes = [(m, ASK) for m in (registry.base_name, "ok@lab", "killed@flaky", "404@flaky")]
    states = [(list(s.texts), list(s.errors)) for s in stream_panes(directory, panes, SETTINGS)]
    texts, errors = states[-1]
    # The killed pane keeps what arrived (a reset connection may drop the last chunk still in the socket buffer).
    assert texts[0] and texts[1] == "你好。" and texts[2] in ("你", "你好") and errors[:2] == [None, None]
    assert "flaky" in errors[2] and "not found" in errors[3]
    assert any(t[1] == "你" for t, _ in states)  # the remote pane streamed piece by piece
