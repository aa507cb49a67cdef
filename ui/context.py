"""What every tab needs to know about the running app: settings resolved once at start, shared by all users."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hosting.roles import Policy
from safeio import default_data_dir

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AppContext:
    model: str = "demo"  # a hub id, a local directory, or "demo" for the built-in demo model
    data_dir: Path = field(default_factory=lambda: default_data_dir())  # --data-dir, $MEDTUNE_DATA_DIR, ./runs
    lang: str = "en"
    sample_dir: Path = PROJECT_ROOT / "data"
    users: object | None = None  # hosting.users.UserStore when logins are configured; None: one local admin
    policy: Policy = Policy()
    max_running_jobs: int = 1  # training / evaluation jobs run at once from the shared queue (one GPU: 1)
    memory_budget_gb: float | None = None  # loaded models beyond this are unloaded least-recently-used; None: no cap
    # Directories users may name as models (hosting/model_refs.py); None: the defaults for data_dir with logins on,
    # no limit without logins (a single-user install)
    model_roots: tuple[Path, ...] | None = None
    score_concurrency: int = 2  # Score tab requests run at once, apart from every other event's limit

    @property
    def is_demo_model(self) -> bool:
        return self.model == "demo"

    def allowed_model_roots(self) -> tuple[Path, ...]:
        from hosting.model_refs import default_model_roots

        return self.model_roots if self.model_roots is not None else default_model_roots(self.data_dir)
