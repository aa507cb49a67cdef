"""Votes are durable: one SQLite row per vote with everything needed to audit it, surviving a restart; no vote
holds a browser session id, and old vote files that did are migrated without losing a vote."""

import csv
import sqlite3
import threading

import pytest

from chat.votes import Vote, VoteStore


def vote(outcome="a", **kw):
    values = dict(model_a="demo", model_b="lora-1", outcome=outcome, prompt="头痛怎么办？", answer_a="多休息。",
                  answer_b="请就医。", voter="alice", base_model="demo", settings={"temperature": 0.0, "seed": 0},
                  conversation_a=[{"role": "user", "content": "头痛怎么办？"}, {"role": "assistant", "content": "多休息。"}])
    values.update(kw)
    return Vote(**values)


def test_votes_survive_a_restart(tmp_path):
    path = tmp_path / "votes" / "votes.sqlite"
    store = VoteStore(path)
    first = store.add(vote("a"))
    store.add(vote("both_bad", voter="bob", base_model="other"))
    del store
    reopened = VoteStore(path)  # a new store object on the same file, as after an app restart
    votes = reopened.all()
    assert [v.id for v in votes] == [first, first + 1]
    assert votes[0] == vote("a", id=first, created_at=votes[0].created_at, uid=votes[0].uid)
    assert len(votes[0].uid) == 16 and votes[0].uid != votes[1].uid  # opaque, random, one per vote
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
    assert rows[0]["voter"] == "alice" and rows[0]["uid"] and "session_id" not in rows[0]


OLD_SCHEMA = """CREATE TABLE votes (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,
    session_id TEXT NOT NULL, base_model TEXT NOT NULL, model_a TEXT NOT NULL, model_b TEXT NOT NULL,
    outcome TEXT NOT NULL, prompt TEXT NOT NULL, answer_a TEXT NOT NULL, answer_b TEXT NOT NULL,
    conversation_a TEXT NOT NULL, conversation_b TEXT NOT NULL, settings TEXT NOT NULL)"""


def test_an_old_vote_file_keeps_its_votes_and_loses_the_session_ids(tmp_path):
    """Vote files written before uids held gradio session hashes (enough to take over a voter's session)."""
    path = tmp_path / "votes.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(OLD_SCHEMA)
        for i, outcome in enumerate(("a", "tie")):
            db.execute("INSERT INTO votes VALUES (NULL, '2026-01-01T00:00:00+00:00', ?, 'demo', 'demo', 'lora-1', ?,"
                       " '头痛怎么办？', 'x', 'y', '[]', '[]', '{}')", (f"SECRETSESSIONHASH{i}", outcome))
    db.close()
    store = VoteStore(path)
    votes = store.all()
    assert [(v.id, v.outcome, v.prompt, v.voter) for v in votes] == [(1, "a", "头痛怎么办？", ""), (2, "tie", "头痛怎么办？", "")]
    assert all(len(v.uid) == 16 for v in votes) and votes[0].uid != votes[1].uid
    assert store.add(vote("b")) == 3 and store.battles("demo") == [("demo", "lora-1", o) for o in ("a", "tie", "b")]
    with sqlite3.connect(path) as db:
        assert "session_id" not in [r[1] for r in db.execute("PRAGMA table_info(votes)")]
    db.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("votes.sqlite")]  # with the WAL
    assert not any(b"SECRETSESSIONHASH" in p.read_bytes() for p in files)  # vacuumed: not even in free pages
    assert len(VoteStore(path).all()) == 3  # opening again changes nothing


def test_concurrent_votes_are_all_kept(tmp_path):
    store = VoteStore(tmp_path / "v.sqlite")
    threads = [threading.Thread(target=lambda i=i: store.add(vote(voter=f"u{i}"))) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(v.voter for v in store.all()) == sorted(f"u{i}" for i in range(8))


def test_bad_votes_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="outcome must be one of"):
        vote("left")
    with pytest.raises(ValueError, match="two different models"):
        vote(model_b="demo")
