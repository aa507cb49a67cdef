"""Votes are durable: one SQLite row per vote with everything needed to audit it, surviving a restart."""

import csv
import threading

import pytest

from chat.votes import Vote, VoteStore


def vote(outcome="a", **kw):
    values = dict(model_a="demo", model_b="lora-1", outcome=outcome, prompt="头痛怎么办？", answer_a="多休息。",
                  answer_b="请就医。", session_id="s1", base_model="demo", settings={"temperature": 0.0, "seed": 0},
                  conversation_a=[{"role": "user", "content": "头痛怎么办？"}, {"role": "assistant", "content": "多休息。"}])
    values.update(kw)
    return Vote(**values)


def test_votes_survive_a_restart(tmp_path):
    path = tmp_path / "votes" / "votes.sqlite"
    store = VoteStore(path)
    first = store.add(vote("a"))
    store.add(vote("both_bad", session_id="s2", base_model="other"))
    del store
    reopened = VoteStore(path)  # a new store object on the same file, as after an app restart
    votes = reopened.all()
    assert [v.id for v in votes] == [first, first + 1]
    assert votes[0] == vote("a", id=first, created_at=votes[0].created_at)
    assert votes[0].created_at.endswith("+00:00") and votes[0].settings == {"temperature": 0.0, "seed": 0}
    assert [v.outcome for v in reopened.all(base_model="other")] == ["both_bad"]
    assert reopened.count() == 2


def test_csv_export_keeps_chinese_and_json_columns(tmp_path):
    store = VoteStore(tmp_path / "v.sqlite")
    store.add(vote("tie"))
    out = store.export_csv(tmp_path / "votes.csv")
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["prompt"] == "头痛怎么办？" and rows[0]["outcome"] == "tie"
    assert rows[0]["settings"] == '{"temperature": 0.0, "seed": 0}'


def test_concurrent_votes_are_all_kept(tmp_path):
    store = VoteStore(tmp_path / "v.sqlite")
    threads = [threading.Thread(target=lambda i=i: store.add(vote(session_id=f"s{i}"))) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(v.session_id for v in store.all()) == sorted(f"s{i}" for i in range(8))


def test_bad_votes_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="outcome must be one of"):
        vote("left")
    with pytest.raises(ValueError, match="two different models"):
        vote(model_b="demo")
