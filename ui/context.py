"""What every tab needs to know about the running app: settings resolved once at start, and the services shared by
all users (the job scheduler, the pages' last evaluation jobs), built once by app.py (`with_services`)."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
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
    memory_budget_gb: float | None = None  # GiB; loaded models beyond it are unloaded least-recently-used; None: no cap
    # Directories users may name as models (hosting/model_refs.py); None: the defaults for data_dir with logins on,
    # no limit without logins (a single-user install)
    model_roots: tuple[Path, ...] | None = None
    score_concurrency: int = 2  # Score tab requests run at once, apart from every other event's limit
    jobs: object | None = None  # jobs.scheduler.JobQueue: the one scheduler of data_dir (with_services)
    pages: "PageJobs | None" = None  # the evaluation job each (user, browser page) last ran or joined
    # OpenAI-compatible endpoints the admin named with --endpoint (models.remote.endpoints.Endpoint); more may be
    # listed in <data_dir>/endpoints.yaml. Users pick from their models; they never give an address.
    endpoints: tuple = ()

    @property
    def is_demo_model(self) -> bool:
        return self.model == "demo"

    def allowed_model_roots(self) -> tuple[Path, ...]:
        from hosting.model_refs import default_model_roots

        return self.model_roots if self.model_roots is not None else default_model_roots(self.data_dir)


class PageJobs:
    """(user, browser page) -> the job id that page follows, for its Stop button. Bounded: on a long-running server
    the pages not heard from longest are forgotten first (a reload is a new page anyway)."""

    def __init__(self, limit: int = 10000):
        self.limit = limit
        self._ids: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def set(self, key: tuple[str, str], job_id: str) -> None:
        with self._lock:
            self._ids[key] = job_id
            self._ids.move_to_end(key)
            while len(self._ids) > self.limit:
                self._ids.popitem(last=False)

    def get(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            return self._ids.get(key)

    def __len__(self) -> int:
        return len(self._ids)


def with_services(ctx: AppContext) -> AppContext:
    """ctx with its shared services, created here once: the job scheduler with the app's runners, and the pages'
    job map. app.py calls it at start; building an app from a bare context (tests) calls it too."""
    if ctx.jobs is not None and ctx.pages is not None:
        return ctx
    from jobs.runners import default_runners
    from jobs.scheduler import JobQueue

    if ctx.jobs is None:
        from jobs.runners import register_job_folders

        from ui.zerogpu import eval_batch_call, zerogpu_active

        # On a ZeroGPU Space each evaluation batch runs in a lent GPU's worker; elsewhere batches run as they are.
        runners = default_runners(batch_call=eval_batch_call if zerogpu_active() else None)
        jobs = JobQueue(ctx.data_dir, ctx.max_running_jobs, runners=runners)
        register_job_folders(jobs.store)  # training runs from the command line that predate their registering
    else:
        jobs = ctx.jobs
    return dataclasses.replace(ctx, jobs=jobs, pages=ctx.pages or PageJobs())
