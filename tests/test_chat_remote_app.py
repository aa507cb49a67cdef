"""The Chat tab with remote models, over HTTP with gradio_client: the real app with the demo model and an endpoint
(a real scripted OpenAI-compatible server): one grouped, labelled list; a failing remote pane says why while the
others finish; a blind vote records where each model ran."""

from __future__ import annotations

import pytest
from gradio_client import Client
from remote_fixtures import start_scripted_server
from test_chat_app import decoding, messages

from chat.votes import VoteStore
from models.remote.endpoints import Endpoint


@pytest.fixture(scope="module")
def remote_app(tmp_path_factory, demo_model):
    from ui.context import AppContext
    from ui.layout import build_app

    server, url = start_scripted_server()
    data_dir = tmp_path_factory.mktemp("remote-chat-data")
    # The endpoint lists "ok" and "lora" itself; "404" is named only in the file (its server does not know it).
    (data_dir / "endpoints.yaml").write_text(f"endpoints:\n  - name: flaky\n    url: {url}\n    models: ['404']\n"
                                             "    retries: 0\n", encoding="utf-8")
    app = build_app(AppContext(model="demo", data_dir=data_dir, endpoints=(Endpoint("lab", url),))).queue()
    _, app_url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield app_url, data_dir
    app.close()
    server.shutdown()


def test_one_list_grouped_and_labelled_and_a_failing_pane_says_why(remote_app):
    client = Client(remote_app[0], verbose=False)
    choices_update, table = client.predict([], api_name="/chat_models")
    choices = [tuple(c) for c in choices_update["choices"]]
    assert [value for _, value in choices] == ["demo", "ok@lab", "lora@lab", "404@flaky"]
    labels = dict((value, label) for label, value in choices)
    assert labels["demo"] == "demo · in this app" and labels["lora@lab"] == "lora (adapter of ok) · served by lab"
    assert [row[0] for row in table["data"]][-3:] == ["ok@lab", "lora@lab", "404@flaky"]
    result = client.predict("头痛怎么办？", ["demo", "ok@lab", "404@flaky"], *decoding(8), api_name="/chat_send")
    panes = [messages(p)[-1][1] for p in result[2:5]]  # (prompt, status, 4 panes, table): no State
    assert panes[0] and "failed" not in panes[0]
    assert panes[1] == "你好。"
    assert "This model failed" in panes[2] and "not found" in panes[2]


def test_blind_vote_records_where_each_model_ran(remote_app):
    client = Client(remote_app[0], verbose=False)
    for _ in range(20):  # a random draw: until it puts the in-process model against a remote one (1 in 2 each time)
        client.predict(api_name="/blind_new")
        client.predict("头痛怎么办？", *decoding(8), api_name="/blind_send")
        reveal = client.predict("tie", api_name="/blind_vote")[0]
        if "demo" in reveal and "@" in reveal:
            break
    votes = VoteStore(remote_app[1] / "chat" / "votes.sqlite").all()
    vote = next(v for v in votes if "demo" in (v.model_a, v.model_b) and "@" in v.model_a + v.model_b)
    remote = vote.model_a if "@" in vote.model_a else vote.model_b
    where = vote.settings["where"]
    assert sorted(where.values()) == sorted(["in-process", remote.rpartition("@")[2]])
    assert where["a" if remote == vote.model_a else "b"] == remote.rpartition("@")[2]
