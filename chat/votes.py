"""Blind-test votes, one SQLite row per vote, durable across restarts.

SQLite in WAL mode with a fresh connection per operation: safe from any thread of the app, and from several app
processes sharing one data directory. A vote row holds everything needed to audit it later: the prompt, both
models, both answers (and whole conversations), the decoding settings, the time and the signed-in user who voted.

Who sees what: the leaderboard (everyone) is computed from (model_a, model_b, outcome) only; the rows themselves,
with users' prompts and conversations, are exported for the admin only (`export_csv`, called behind a role check).
A vote never records the browser's session id: that id is what a client presents to reach a session's state, so
it would hand the voter's session to whoever reads the votes. Each vote gets an opaque random `uid` instead.
Vote files written before this (with a `session_id` column) are migrated when opened: every vote is kept, the
session ids are dropped, and the file is vacuumed so that the old values do not linger in free pages.
"""

from __future__ import annotations

import csv
import json
import secrets
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

OUTCOMES = ("a", "b", "tie", "both_bad")  # a = left pane's model won, b = right pane's, tie, both bad

_COLUMNS = """
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    uid TEXT NOT NULL DEFAULT '',
    voter TEXT NOT NULL DEFAULT '',
    base_model TEXT NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('a', 'b', 'tie', 'both_bad')),
    prompt TEXT NOT NULL,
    answer_a TEXT NOT NULL,
    answer_b TEXT NOT NULL,
    conversation_a TEXT NOT NULL,
    conversation_b TEXT NOT NULL,
    settings TEXT NOT NULL
"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS votes ({_COLUMNS});
CREATE INDEX IF NOT EXISTS votes_base ON votes (base_model);
"""
# The columns a vote file of every version has, copied as they are when an old file is migrated.
_KEPT = ("id", "created_at", "base_model", "model_a", "model_b", "outcome", "prompt", "answer_a", "answer_b",
         "conversation_a", "conversation_b", "settings")


def new_uid() -> str:
    """An opaque id for one vote: random, so it says nothing about the voter or their session."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Vote:
    model_a: str
    model_b: str
    outcome: str
    prompt: str = ""
    answer_a: str = ""
    answer_b: str = ""
    voter: str = ""  # the signed-in user's name ("local" without logins)
    base_model: str = ""
    settings: dict = field(default_factory=dict)
    conversation_a: list = field(default_factory=list)
    conversation_b: list = field(default_factory=list)
    created_at: str = ""  # ISO 8601, UTC; filled in by the store when empty
    uid: str = ""  # opaque random id; filled in by the store when empty
    id: int | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        if not self.model_a or not self.model_b or self.model_a == self.model_b:
            raise ValueError(f"a vote needs two different models, got {self.model_a!r} and {self.model_b!r}")


class VoteStore:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            self._migrate(db)
            with db:
                db.executescript(_SCHEMA)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """A vote file from before uids: rebuild the table without its session_id column, keeping every vote."""
        columns = {row["name"] for row in db.execute("PRAGMA table_info(votes)")}
        if "session_id" not in columns:
            return
        kept = ", ".join(_KEPT)
        db.execute("BEGIN IMMEDIATE")
        try:
            if "session_id" in {row["name"] for row in db.execute("PRAGMA table_info(votes)")}:  # not done meanwhile
                db.execute(f"CREATE TABLE votes_new ({_COLUMNS})")
                db.execute(f"INSERT INTO votes_new ({kept}, uid) SELECT {kept}, lower(hex(randomblob(8))) FROM votes")
                db.execute("DROP TABLE votes")
                db.execute("ALTER TABLE votes_new RENAME TO votes")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("VACUUM")  # the dropped session ids would otherwise stay readable in the file's free pages

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def add(self, vote: Vote) -> int:
        """Store one vote (committed before returning); returns its id."""
        row = asdict(vote)
        row.pop("id")
        row["created_at"] = vote.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds")
        row["uid"] = vote.uid or new_uid()
        for key in ("settings", "conversation_a", "conversation_b"):
            row[key] = json.dumps(row[key], ensure_ascii=False)
        columns = ", ".join(row)
        with closing(self._connect()) as db, db:
            cursor = db.execute(f"INSERT INTO votes ({columns}) VALUES ({', '.join('?' * len(row))})",
                                tuple(row.values()))
            return int(cursor.lastrowid)

    def all(self, base_model: str | None = None) -> list[Vote]:
        """Every vote in the order cast (optionally only those cast on one base model)."""
        query, args = "SELECT * FROM votes", ()
        if base_model is not None:
            query, args = query + " WHERE base_model = ?", (base_model,)
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
        return [self._vote(r) for r in rows]

    def battles(self, base_model: str | None = None) -> list[tuple[str, str, str]]:
        """(model_a, model_b, outcome) of every vote in the order cast: all the public leaderboard reads."""
        query, args = "SELECT model_a, model_b, outcome FROM votes", ()
        if base_model is not None:
            query, args = query + " WHERE base_model = ?", (base_model,)
        with closing(self._connect()) as db:
            return [tuple(r) for r in db.execute(query + " ORDER BY id", args).fetchall()]

    @staticmethod
    def _vote(row: sqlite3.Row) -> Vote:
        values = dict(row)
        for key in ("settings", "conversation_a", "conversation_b"):
            values[key] = json.loads(values[key])
        return Vote(**values)

    def count(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM votes").fetchone()[0])

    def export_csv(self, out: Path | str, base_model: str | None = None) -> Path:
        """All votes as CSV (UTF-8 with BOM so that Excel shows Chinese correctly); JSON columns stay JSON.

        Holds every voter's prompts and conversations: for the admin only (the caller checks the role)."""
        out = Path(out)
        fields = [f for f in Vote.__dataclass_fields__]
        with out.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for vote in self.all(base_model):
                row = asdict(vote)
                for key in ("settings", "conversation_a", "conversation_b"):
                    row[key] = json.dumps(row[key], ensure_ascii=False)
                writer.writerow(row)
        return out
