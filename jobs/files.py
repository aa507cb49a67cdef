"""The job directory: one folder per training job that anyone can read to follow it, and the code that writes it.

    <data_dir>/jobs/<job_id>/
        config.yaml      the resolved TrainConfig
        status.json      stage (jobs/status.py), pid, step / total, tokens/s, ETA, last losses, error, adapter_dir
        metrics.jsonl    one line per log step (loss, learning rate, tokens/s, ETA) and per evaluation (eval_loss)
        samples.jsonl    answers to the fixed prompts every N steps
        data_report.json rows read / kept / rejected (with line and reason), truncation
        train.log        the process's stdout and stderr
        checkpoints/     Trainer checkpoints (Resume continues from the last one)
        owner.lock       held (fcntl.flock) by the one process that trains the job: jobs/process.py

Together with the queue database (jobs/store.py) this is the store: the only code that writes job state. The trainer
(finetune/train.py) never sees it: it reports through jobs/worker.py's reporter, which writes here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from jobs.status import STAGE_DONE

TERMINAL = STAGE_DONE  # the stages that end a job process
# A job id names a directory under <data_dir>/jobs: no separators, no leading dot (hidden names are temp dirs),
# printable ASCII only, so that an id from a user (the tab, the API, `python -m finetune stop ID`) cannot point
# anywhere else, and shows as itself in a terminal or a page.
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STOP_GRACE_S = 60.0  # how long a job may take to save its checkpoint after Stop before the group is killed


class JobError(RuntimeError):
    pass


class BadJobId(JobError, ValueError):
    """A job id that is not a plain name (a path, control characters, too long), or names no job."""


def check_job_id(job_id) -> str:
    """`job_id` if it is a plain job name; else BadJobId, which shows the id escaped (never raw control codes)."""
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        shown = ascii(job_id)[:80] if isinstance(job_id, str) else type(job_id).__name__
        raise BadJobId(f"job id {shown} is not a job name: letters, digits, '.', '_' and '-' only "
                       "(at most 128, not starting with '.'); `python -m finetune jobs` lists them")
    return job_id


def job_files(data_dir: Path, job_id, must_exist: bool = True) -> "JobFiles":
    """The files of job `job_id` under data_dir, the id checked first; `must_exist`: BadJobId when there is none."""
    files = JobFiles(jobs_root(data_dir) / check_job_id(job_id))
    if must_exist and not files.config.is_file():
        raise BadJobId(f"no job {job_id!r} in {jobs_root(data_dir)}; `python -m finetune jobs` lists them")
    return files


def is_writer() -> bool:
    """Under torchrun / accelerate launch every rank runs the job: only rank 0 writes the job files."""
    return os.environ.get("RANK", "0") == "0"


def write_json_atomic(path: Path, data: dict) -> None:
    # Readers poll these files while the job writes them: replace, never rewrite in place.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being appended right now; it is complete on the next read
    return rows


@dataclass(frozen=True)
class JobFiles:
    dir: Path

    @property
    def job_id(self) -> str:
        return self.dir.name

    config = property(lambda self: self.dir / "config.yaml")
    status = property(lambda self: self.dir / "status.json")
    metrics = property(lambda self: self.dir / "metrics.jsonl")
    samples = property(lambda self: self.dir / "samples.jsonl")
    data_report = property(lambda self: self.dir / "data_report.json")
    log = property(lambda self: self.dir / "train.log")
    checkpoints = property(lambda self: self.dir / "checkpoints")
    stop_request = property(lambda self: self.dir / "stop_requested")
    lock = property(lambda self: self.dir / "owner.lock")

    def read_status(self) -> dict:
        try:
            return json.loads(self.status.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"job_id": self.job_id, "state": "unknown"}

    def update_status(self, **changes) -> dict:
        status = self.read_status()
        if not is_writer():
            return status
        status.update(changes, job_id=self.job_id, updated_at=time.time())
        write_json_atomic(self.status, status)
        return status

    def append_metric(self, row: dict) -> None:
        if not is_writer():
            return
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def append_sample(self, row: dict) -> None:
        if not is_writer():
            return
        with self.samples.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """On resume, steps after the checkpoint are trained again: drop their old points so the curve stays one line."""
        for path in (self.metrics, self.samples):
            kept = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
            os.replace(tmp, path)

    def default_adapter_dir(self, cfg) -> Path:
        # <data_dir>/jobs/<id> -> <data_dir>/adapters/<name>
        return self.dir.parent.parent / "adapters" / (cfg.adapter_name or self.job_id)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 64_000))
            text = f.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------------------------


def jobs_root(data_dir: Path) -> Path:
    return Path(data_dir) / "jobs"


def new_job_id(cfg) -> str:
    """<time>-<model's last path part>-lora, made of safe characters whatever the model text was (a user typed it:
    `<img src=x onerror=...>` once became a directory name)."""
    model = Path(cfg.model.rstrip("/")).name
    model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._-")[:48] or "model"
    return check_job_id(f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-lora")


def create_job(cfg, data_dir: Path, job_id: str | None = None) -> JobFiles:
    """Validate, resolve and write the config into a fresh job directory. Nothing runs yet."""
    cfg = dataclasses.replace(cfg).validate()  # a copy: the caller's config keeps its own values
    job_id = check_job_id(job_id) if job_id else new_job_id(cfg)
    root = jobs_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    base, n = job_id, 1
    while (root / job_id).exists():  # two starts in the same second
        n += 1
        job_id = f"{base}-{n}"
    files = JobFiles(root / job_id)
    files.dir.mkdir()
    cfg.data = str(Path(cfg.data).resolve())
    cfg.adapter_name = cfg.adapter_name or job_id
    if (Path(data_dir) / "adapters" / cfg.adapter_name).exists() and not cfg.output_dir:
        files.dir.rmdir()
        from finetune.config import ConfigError

        raise ConfigError("adapter_name", f"an adapter named {cfg.adapter_name!r} already exists; pick another name",
                          code="config_adapter_exists", name=cfg.adapter_name)
    cfg.save(files.config)
    files.update_status(state="created", created_at=time.time(), adapter_name=cfg.adapter_name, model=cfg.model)
    return files


def list_jobs(data_dir: Path) -> list[JobFiles]:
    """Newest first (job ids start with their creation time)."""
    root = jobs_root(data_dir)
    if not root.is_dir():
        return []
    return [JobFiles(p) for p in sorted(root.iterdir(), reverse=True)
            if JOB_ID_RE.match(p.name) and (p / "config.yaml").exists()]
