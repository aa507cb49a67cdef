"""Issue 11, who sees what data, each attack turned into a test: the public leaderboard (no prompts, no session
ids) and the admin-only vote export; another user's job shows only its queue line; model references outside the
admin's roots are refused with one message; half-written adapter dirs are never listed and are cleaned; job ids from
model text are safe; `finetune stop ../../x` writes nothing; a failed hub load leaves the model list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

from chat.votes import Vote
from hosting.model_refs import ModelRefError, check_model_ref
from hosting.roles import User
from ui.context import AppContext

ROOT = Path(__file__).resolve().parent.parent


class Users:
    """The user store as ui.access reads it (`.user(name)`): an admin, two members, a guest."""

    roles = {"root": "admin", "alice": "member", "bob": "member", "gus": "guest"}

    def user(self, name: str) -> User | None:
        return User(name, self.roles[name]) if name in self.roles else None


def request(name: str) -> gr.Request:
    return gr.Request(username=name)


@pytest.fixture
def ctx(tmp_path) -> AppContext:
    from ui.context import with_services

    ctx = with_services(AppContext(model="demo", data_dir=tmp_path / "data", users=Users(),
                                   model_roots=(tmp_path / "models",)))
    yield ctx
    ctx.jobs.close()


# ---- item 2: the leaderboard and the votes export ---------------------------------------------------------------

def test_guest_leaderboard_has_aggregates_only_and_only_the_admin_exports_votes(ctx):
    from ui.chat_tab import ChatHandlers

    handlers = ChatHandlers(ctx)
    for outcome in ("a", "a", "tie"):
        handlers.votes.add(Vote("demo", "lora-1", outcome, prompt="我的病人有HIV，怎么办？", answer_a="x", answer_b="y",
                                voter="alice", base_model="demo"))
    summary, standings, h2h, csv_path = handlers.board()  # /leaderboard: the same for everyone, even no session
    shown = summary + standings.to_csv() + h2h.to_csv() + Path(csv_path).read_text(encoding="utf-8-sig")
    assert "3 votes" in summary and list(standings.iloc[:, 0]) == ["demo", "lora-1"]
    assert "HIV" not in shown and "alice" not in shown and "session" not in shown

    for name in ("gus", "alice"):
        with pytest.raises(gr.Error, match=f"{name} .*may not export every voter's votes"):
            handlers.export_votes(request(name))
        assert handlers.export_box(request(name))["visible"] is False
    assert handlers.export_box(request("root"))["visible"] is True
    export = Path(handlers.export_votes(request("root"))).read_text(encoding="utf-8-sig")
    header = export.splitlines()[0].split(",")
    assert export.count("我的病人有HIV") == 3 and "voter" in header and "uid" in header and "session_id" not in header


# ---- item 4: job details for their owner and the admin only ----------------------------------------------------

@pytest.fixture
def running_job(ctx, tmp_path):
    """A training job of alice's, 'running' in the app's shared queue (a runner that waits), with a log that names
    the server path of her upload."""
    from finetune.config import TrainConfig
    from jobs.files import create_job
    from jobs.scheduler import Runner

    upload = Path(ctx.data_dir) / "uploads" / "20260101-000000-secret-cases.jsonl"
    upload.parent.mkdir(parents=True)
    upload.write_text((ROOT / "data" / "train_sample.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    files = create_job(TrainConfig(model="demo", data=str(upload)), ctx.data_dir)
    files.log.write_text(f"[job] reading {upload}\n[job] PRIVATE LOG LINE\n", encoding="utf-8")
    files.append_metric({"step": 1, "loss": 2.5})
    files.append_sample({"step": 1, "prompt": "头痛？", "answer": "PRIVATE SAMPLE"})
    gate = threading.Event()

    def wait(job, control):
        control.progress(1, 45, 60.0)
        gate.wait(30)

    q = ctx.jobs  # the app's scheduler (ui.jobs_tab.job_queue(ctx)), its training runner one that waits
    q.runners["train"] = Runner(wait)
    q.submit("train", "alice", {"job_dir": str(files.dir)}, job_id=files.job_id)
    deadline = time.time() + 10
    while q.get(files.job_id).state != "running" and time.time() < deadline:
        time.sleep(0.02)
    yield files, upload
    gate.set()


def test_another_users_job_shows_its_queue_line_only(ctx, running_job):
    from ui.finetune_tab import do_status
    from ui.jobs_tab import do_detail

    files, upload = running_job
    for name in ("bob", "gus"):  # another member, a guest
        text, plot, log, samples, raw = do_status(files.job_id, request(name), ctx)
        assert "alice" in text and "running" in text.lower() and log == samples == "" and plot.empty
        assert set(raw) == {"job_id", "owner", "state", "position"} and raw["owner"] == "alice"
        detail, detail_log = do_detail(files.job_id, request(name), ctx)
        assert "alice" in detail and detail_log == ""
        assert "PRIVATE" not in text + detail and str(upload) not in text + detail + json.dumps(raw)

    text, plot, log, samples, raw = do_status(files.job_id, request("alice"), ctx)  # the owner: all but the path
    assert "PRIVATE LOG LINE" in log and "PRIVATE SAMPLE" in samples and len(plot) == 1
    everything = text + log + samples + json.dumps(raw, ensure_ascii=False)
    assert upload.name in log and str(upload) not in everything and str(Path(ctx.data_dir).resolve()) not in everything
    assert "PRIVATE LOG LINE" in do_detail(files.job_id, request("alice"), ctx)[1]
    assert str(upload) in do_status(files.job_id, request("root"), ctx)[2]  # the admin sees the server's paths

    for bad in ("../../x", "..", "a/b", "\x1b[31m"):  # no path reaches outside the jobs folder
        with pytest.raises(gr.Error, match="No training job"):
            do_status(bad, request("root"), ctx)


# ---- item 5: model references ------------------------------------------------------------------------------------

def test_model_refs_outside_the_roots_are_refused_with_one_message(tmp_path, monkeypatch):
    roots = (tmp_path / "models",)
    inside = tmp_path / "models" / "qwen"
    inside.mkdir(parents=True)
    outside = tmp_path / "elsewhere" / "model"
    outside.mkdir(parents=True)
    (tmp_path / "models" / "link").symlink_to(outside)
    assert check_model_ref("Qwen/Qwen2.5-0.5B-Instruct", roots) == "Qwen/Qwen2.5-0.5B-Instruct"
    assert check_model_ref(" demo ", roots) == "demo"
    assert check_model_ref(str(inside), roots) == str(inside.resolve())
    assert check_model_ref(str(tmp_path / "models" / "qwen" / ".." / "qwen"), roots) == str(inside.resolve())

    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)  # hub-shaped, but transformers would read this directory
    messages = set()
    for bad in (str(outside), str(tmp_path / "missing"), str(tmp_path / "models" / "link"), "/etc", "/etc/passwd",
                "owner/name", "../models/qwen", "a/../../b", "", "x\n", "a" * 5000, "./models/nope"):
        with pytest.raises(ModelRefError) as caught:
            check_model_ref(bad, roots)
        messages.add(str(caught.value).split(": ", 1)[1])
    assert len(messages) == 1  # the same words whether the path exists, is outside, or is a file

    from hosting.model_refs import parse_model_roots

    defaults = parse_model_roots("", tmp_path / "data")  # with logins and no --model-roots
    assert defaults[0] == tmp_path / "data" and len(defaults) == 3
    assert parse_model_roots(f"/a{os.pathsep}/b", tmp_path) == (Path("/a"), Path("/b"))


def test_start_and_models_load_refuse_a_path_outside_the_roots(ctx, tmp_path):
    from ui.chat_tab import ChatHandlers
    from ui.finetune_tab import do_start
    from tests.test_finetune_app import settings

    for model in ("/etc", str(tmp_path / "nope")):
        with pytest.raises(gr.Error, match="not a model you may use here") as caught:
            do_start(request("root"), model, None, "train_sample.jsonl", "auto", "", *settings(), ctx=ctx)
        assert "Errno" not in str(caught.value) and "exist" not in str(caught.value)
        with pytest.raises(gr.Error, match="not a model you may use here"):
            ChatHandlers(ctx).load_model(model, request("root"))
    assert not (Path(ctx.data_dir) / "jobs").exists() or not any((Path(ctx.data_dir) / "jobs").iterdir())


# ---- item 8: half-written adapters ---------------------------------------------------------------------------------

def write_adapter_config(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "demo"}), encoding="utf-8")
    return folder


def test_temp_adapter_dirs_are_never_listed_and_are_cleaned_at_start(tmp_path):
    from app import clean_adapter_temp_dirs
    from chat.registry import ModelRegistry, RegistryError
    from finetune.atomic import atomic_dir

    adapters = tmp_path / "adapters"
    write_adapter_config(adapters / "good")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = write_adapter_config(adapters / f".killed.tmp-{int(dead.stdout)}-abc123")  # its writer is gone
    old = write_adapter_config(adapters / ".older.tmp-k2j4h5g6")  # written before pids were in the name
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = write_adapter_config(adapters / ".fresh.tmp-a1b2c3d4")  # unknown writer, just now: maybe still writing
    live = write_adapter_config(adapters / f".busy.tmp-{os.getppid()}-xyz")  # a live writer's

    registry = ModelRegistry("demo", tmp_path)
    assert registry.usable_models() == ["demo", "good"]
    with pytest.raises(RegistryError, match="no such adapter"):
        registry.add_adapter(left.name)
    with atomic_dir(adapters / "writing") as tmp:  # while this process writes, its dir is hidden and kept
        (tmp / "adapter_config.json").write_text("{}", encoding="utf-8")
        assert registry.usable_models() == ["demo", "good"]
        clean_adapter_temp_dirs(tmp_path)
        assert tmp.is_dir()
    assert not left.exists() and not old.exists() and fresh.is_dir() and live.is_dir()


# ---- should fix: ids, stop, failed loads, finished jobs ----------------------------------------------------------

def test_job_ids_from_model_text_are_safe_and_stop_refuses_paths(tmp_path, capsys):
    from finetune.__main__ import main
    from finetune.config import TrainConfig
    from jobs.files import JOB_ID_RE, new_job_id

    for model in ('<img src=x onerror="alert(1)">', "../../etc", "Qwen/Qwen2.5-0.5B-Instruct", "模型", "/"):
        job_id = new_job_id(TrainConfig(model=model))
        assert JOB_ID_RE.match(job_id) and "<" not in job_id and "/" not in job_id, job_id
    assert new_job_id(TrainConfig(model="Qwen/Qwen2.5-0.5B-Instruct")).endswith("-Qwen2.5-0.5B-Instruct-lora")

    data_dir, victim = tmp_path / "a" / "b" / "runs", tmp_path / "x"
    victim.mkdir()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["stop", "../../x", "--data-dir", str(data_dir)]) == 2
    assert "job id '../../x' is not a job name" in capsys.readouterr().err
    assert main(["stop", "nope", "--data-dir", str(data_dir)]) == 2
    assert "no job 'nope'" in capsys.readouterr().err
    assert main(["stop", "\x1b[31mred", "--data-dir", str(data_dir)]) == 2
    assert "\x1b" not in capsys.readouterr().err  # shown escaped, not as a terminal code
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written anywhere


def test_a_failed_hub_load_leaves_the_model_list(tmp_path):
    from chat.registry import ModelRegistry, RegistryError
    from chat_fixtures import build_tiny_model

    registry = ModelRegistry(str(build_tiny_model(tmp_path / "base")), tmp_path)
    name = registry.add_adapter("nobody/no-such-adapter")
    assert name in registry.usable_models()
    with pytest.raises(RegistryError, match="cannot be attached"):
        registry.attach(name)  # offline: the hub is unreachable
    assert name not in registry.usable_models()


def test_a_job_that_finished_while_the_app_was_down_is_reconciled(tmp_path):
    from jobs.files import JobFiles
    from jobs.runners import training_after_restart, training_final_report
    from jobs.scheduler import JobQueue, Runner

    gate = threading.Event()

    def cut_off(job, control):  # the app "dies" at step 1 of 45: the row stays running
        control.progress(1, 45, 100.0)
        gate.wait(30)

    first = JobQueue(tmp_path, runners={"train": Runner(cut_off)}, poll_s=0.05)
    jobs = {}
    for name, status in (("done", {"state": "completed", "step": 45, "total_steps": 45}),
                         ("broke", {"state": "failed", "step": 7, "total_steps": 45, "error": "CUDA out of memory"})):
        files = JobFiles(tmp_path / "jobs" / name)
        files.dir.mkdir(parents=True)
        jobs[name] = (files, status)
    for name, (files, _) in jobs.items():
        first.submit("train", "alice", {"job_dir": str(files.dir)}, job_id=name)
    first.max_running = 2
    first._wake.set()
    deadline = time.time() + 10
    while any(first.get(n).done != 1 for n in jobs) and time.time() < deadline:
        time.sleep(0.02)
    first.close()
    for files, status in jobs.values():  # what the job processes wrote while no app was watching
        files.status.write_text(json.dumps(status), encoding="utf-8")

    second = JobQueue(tmp_path, runners={"train": Runner(cut_off, training_after_restart, training_final_report)})
    try:
        done, broke = second.get("done"), second.get("broke")
        assert (done.state, done.done, done.total) == ("completed", 45, 45)
        assert (broke.state, broke.done, broke.error) == ("failed", 7, "CUDA out of memory")
    finally:
        gate.set()
        second.close()
