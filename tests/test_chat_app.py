"""The Chat tab driven over HTTP with gradio_client against the running app (demo model + two random adapters)."""

import time

import pytest
from gradio_client import Client

from chat.votes import VoteStore
from finetune.demo_model import DEFAULT_SYSTEM

MODELS = ["demo", "demo-lora-0", "demo-lora-1"]
QUESTION = "高血压患者饮食要注意什么？"


def decoding(max_new_tokens=48):
    return [DEFAULT_SYSTEM, max_new_tokens, 0.0, 1.0, 0, 1.0, 0]  # system, max_new, temperature, top_p, top_k, rep, seed


def messages(pane: dict) -> list[tuple[str, str]]:
    """A Chatbot update as (role, text) pairs."""
    value = (pane.get("value") if isinstance(pane, dict) else pane) or []
    return [(m["role"], "".join(c["text"] for c in m["content"]) if isinstance(m["content"], list) else m["content"])
            for m in value]


def choice_names(update: dict) -> list[str]:
    return [c[0] if isinstance(c, (list, tuple)) else c for c in update["choices"]]


def test_models_endpoint_lists_base_and_adapters_and_new_ones_without_restart(chat_app, demo_model):
    from chat_fixtures import build_adapter

    url, data_dir = chat_app
    client = Client(url, verbose=False)
    choices_update, table = client.predict([], api_name="/chat_models")
    assert choice_names(choices_update) == MODELS and choices_update["value"] == ["demo"]
    assert [row[0] for row in table["data"]] == MODELS
    build_adapter(demo_model, data_dir / "adapters" / "zz-late", seed=9, base_ref="demo")
    try:
        choices_update, table = client.predict(["demo"], api_name="/chat_models")
        assert choice_names(choices_update) == MODELS + ["zz-late"]
        job = client.submit(QUESTION, ["zz-late"], *decoding(8), api_name="/chat_send")
        first = next(iter(job))
        assert first[2]["label"] == "zz-late" and messages(job.result()[2])[-1][1]
    finally:
        import shutil

        shutil.rmtree(data_dir / "adapters" / "zz-late")  # the other tests expect exactly MODELS


def test_answers_stream_into_labelled_panes_and_base_is_the_plain_model(chat_app, demo_model):
    client = Client(chat_app[0], verbose=False)
    job = client.submit(QUESTION, MODELS, *decoding(), api_name="/chat_send")
    updates = [(time.perf_counter(), out) for out in job]
    done_at, final = time.perf_counter(), job.result()
    assert [p["label"] for p in updates[0][1][2:5]] == MODELS and updates[0][1][5]["visible"] is False
    panes = final[2:5]  # while streaming, bare values: labels and visibility are sent once, at the start
    answers = [messages(p)[-1][1] for p in panes]
    assert all(answers) and len(set(answers)) == 3
    partial = [(at, messages(out[2])[-1][1]) for at, out in updates if messages(out[2])]
    early = [(at, text) for at, text in partial if text and text != answers[0]]
    assert early, "no chunk arrived before the end"
    assert all(answers[0].startswith(text) for _, text in early) and early[0][0] < done_at
    assert "tokens/s" in final[1]

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(demo_model), AutoModelForCausalLM.from_pretrained(demo_model)
    chat = [{"role": "system", "content": DEFAULT_SYSTEM}, {"role": "user", "content": QUESTION}]
    inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=48, do_sample=False)
    assert answers[0] == tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_two_sessions_keep_separate_histories_and_regenerate_clear(chat_app):
    first, second = Client(chat_app[0], verbose=False), Client(chat_app[0], verbose=False)
    jobs = [first.submit("头痛怎么办？", MODELS[:2], *decoding(16), api_name="/chat_send"),
            second.submit("发烧怎么办？", MODELS[1:], *decoding(16), api_name="/chat_send")]
    for job in jobs:
        job.result()
    turn2 = first.predict("需要吃药吗？", MODELS[:2], *decoding(16), api_name="/chat_send")
    history = messages(turn2[2])
    assert [h[0] for h in history] == ["user", "assistant", "user", "assistant"]
    assert history[0][1] == "头痛怎么办？" and history[2][1] == "需要吃药吗？"
    again = first.predict(MODELS[:2], *decoding(16), api_name="/chat_regenerate")
    assert messages(again[2]) == history  # greedy: the same answer again
    other = second.predict("还有呢？", MODELS[1:], *decoding(16), api_name="/chat_send")
    assert [h[1] for h in messages(other[2]) if h[0] == "user"] == ["发烧怎么办？", "还有呢？"]
    cleared = first.predict(MODELS[:2], api_name="/chat_clear")
    assert messages(cleared[1]) == []
    with pytest.raises(Exception, match="tick between 1 and 4"):
        first.predict(QUESTION, [], *decoding(16), api_name="/chat_send")


def test_blind_vote_is_stored_revealed_once_and_counted(chat_app):
    url, data_dir = chat_app
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="New battle"):
        client.predict("a", api_name="/blind_vote")
    client.predict(api_name="/blind_new")
    _, pane_a, pane_b, status, *_ = client.predict("头痛怎么办？", *decoding(16), api_name="/blind_send")
    assert messages(pane_a)[-1][0] == "assistant" and "tokens/s" in status
    reveal = client.predict("tie", api_name="/blind_vote")[0]
    assert "Model A was **" in reveal and "Model B was **" in reveal
    with pytest.raises(Exception, match="voted on already"):
        client.predict("a", api_name="/blind_vote")

    votes = VoteStore(data_dir / "chat" / "votes.sqlite").all()  # a new store on the app's file
    assert len(votes) == 1 and votes[0].outcome == "tie" and votes[0].prompt == "头痛怎么办？"
    assert {votes[0].model_a, votes[0].model_b} <= set(MODELS) and votes[0].voter == "local" and votes[0].uid
    assert votes[0].settings["max_new_tokens"] == 16 and votes[0].answer_a == messages(pane_a)[-1][1]
    assert f"**{votes[0].model_a}**" in reveal.split(",")[0]

    summary, standings, h2h, csv_path = client.predict(api_name="/leaderboard")
    assert summary.startswith("1 votes") and len(standings["data"]) == 2
    assert all(row[4] == 1 for row in standings["data"])  # one tie each
    board_csv = open(csv_path, encoding="utf-8-sig").read()  # public: aggregates only, no one's prompt
    assert "头痛怎么办？" not in board_csv and all(m in board_csv for m in (votes[0].model_a, votes[0].model_b))
    export = client.predict(api_name="/votes_export")  # the local user is the admin: the full export
    assert open(export, encoding="utf-8-sig").read().count("头痛怎么办？") >= 1
