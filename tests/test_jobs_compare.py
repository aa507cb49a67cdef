"""The Jobs tab's comparison of finished training runs (issue 13): finetune.compare's table and one line per run,
for the runs the user may see (their own; the admin: all), through the app's own scheduler and handlers."""

from __future__ import annotations

import time

import gradio as gr
import pytest
from pathlib import Path

from finetune.config import TrainConfig
from hosting.roles import User
from jobs.files import create_job
from jobs.scheduler import Runner
from ui.context import AppContext

ROOT = Path(__file__).resolve().parent.parent


class Users:
    roles = {"root": "admin", "alice": "member", "bob": "member"}

    def user(self, name: str) -> User | None:
        return User(name, self.roles[name]) if name in self.roles else None


def request(name: str) -> gr.Request:
    return gr.Request(username=name)


@pytest.fixture
def ctx(tmp_path):
    from ui.context import with_services

    ctx = with_services(AppContext(model="demo", data_dir=tmp_path / "data", users=Users(),
                                   model_roots=(tmp_path / "models",)))
    ctx.jobs.runners["train"] = Runner(lambda job, control: None)  # the run's files are written below
    yield ctx
    ctx.jobs.close()


def finished_run(ctx, owner: str, lr: float, curve: list[float]) -> str:
    files = create_job(TrainConfig(model="demo", data=str(ROOT / "data" / "train_sample.jsonl"),
                                   learning_rate=lr),
                       ctx.data_dir)
    for step, value in enumerate(curve, 1):
        files.append_metric({"step": step, "loss": 2.0 / step})
        files.append_metric({"step": step, "accuracy:mc_val": value, "eval_loss": 1.0 / step})
    ctx.jobs.submit("train", owner, {"job_dir": str(files.dir)}, job_id=files.job_id)
    deadline = time.time() + 10
    while ctx.jobs.get(files.job_id).state != "completed" and time.time() < deadline:
        time.sleep(0.02)
    return files.job_id


def test_compare_own_runs_table_and_chart_and_refuse_others(ctx):
    from ui.jobs_tab import do_compare, do_compare_choices

    fast = finished_run(ctx, "alice", 1e-2, [25.0, 100.0, 75.0])
    slow = finished_run(ctx, "alice", 1e-4, [25.0, 50.0, 50.0])
    bobs = finished_run(ctx, "bob", 1e-3, [0.0, 25.0])

    assert set(do_compare_choices([bobs], request("alice"), ctx)["choices"]) == {fast, slow}
    assert do_compare_choices([bobs], request("alice"), ctx)["value"] == []
    assert set(do_compare_choices(None, request("root"), ctx)["choices"]) == {fast, slow, bobs}

    rows, chart, metric = do_compare([fast, slow], None, request("alice"), ctx)
    assert metric["value"] == "accuracy:mc_val" and metric["choices"] == ["accuracy:mc_val", "eval_loss"]
    by_run = rows.set_index("run")
    assert by_run.loc[fast, "best accuracy:mc_val"] == 100.0 and by_run.loc[fast, "at_step"] == 2
    assert by_run.loc[slow, "lr"] == 1e-4 and by_run.loc[slow, "last accuracy:mc_val"] == 50.0
    points = chart.value["data"] if isinstance(chart.value, dict) else chart.value
    assert len(points) == 6 and chart.y_title == "accuracy:mc_val"

    rows, chart, metric = do_compare([fast, bobs], "eval_loss", request("root"), ctx)  # the admin: anyone's
    assert metric["value"] == "eval_loss" and set(rows["run"]) == {fast, bobs}
    assert rows.set_index("run").loc[bobs, "best eval_loss"] == 0.5

    with pytest.raises(gr.Error, match=f"alice may not compare job {bobs}: it belongs to bob"):
        do_compare([fast, bobs], None, request("alice"), ctx)
    with pytest.raises(gr.Error, match="Pick one or more"):
        do_compare([], None, request("alice"), ctx)
    with pytest.raises(gr.Error, match="No job ../x"):
        do_compare(["../x"], None, request("root"), ctx)


# ---- the Fine-tune tab: the user's own validation files ----------------------------------------------------------

def test_start_takes_own_validation_file_checked_and_kept(ctx, tmp_path):
    import json

    from jobs.files import list_jobs
    from tests.test_finetune_app import settings
    from ui.finetune_tab import do_start

    def write(name: str, rows: list[dict]) -> str:
        path = tmp_path / "upload-cache" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    options = {"A": "休息", "B": "手术", "C": "输液", "D": "观察"}
    bad = write("my_mc.jsonl", [{"id": "1", "question": "头痛？", "options": options, "answer": "A"},
                                {"id": "2", "question": "发热？", "options": options}])
    with pytest.raises(gr.Error) as caught:  # refused before any job exists: file, line and field named
        do_start(request("root"), "demo", None, "train_sample.jsonl", "auto", "", *settings(), [], [bad], ctx=ctx)
    text = str(caught.value)
    assert "my_mc.jsonl:2:" in text and "'answer'" in text and str(tmp_path) not in text
    assert list_jobs(ctx.data_dir) == []

    good = write("my_mc.jsonl", [{"id": str(i), "question": q, "options": options, "answer": "A"}
                                 for i, q in enumerate(["头痛？", "发热？", "咳嗽？"])])
    update = do_start(request("root"), "demo", None, "train_sample.jsonl", "auto", "", *settings(),
                      ["mc_sample.jsonl"], [good], ctx=ctx)
    job = update["value"] if isinstance(update, dict) else update.value
    config = (Path(ctx.data_dir) / "jobs" / job / "config.yaml").read_text(encoding="utf-8")
    import yaml

    eval_sets = yaml.safe_load(config)["eval_sets"]
    assert eval_sets[0].endswith("mc_sample.jsonl") and len(eval_sets) == 2
    kept = Path(eval_sets[1])
    assert kept.name == "my_mc.jsonl" and kept.parent.parent == Path(ctx.data_dir) / "uploads"
    assert kept.read_bytes() == Path(good).read_bytes()


# ---- through the running app ---------------------------------------------------------------------------------------

def test_compare_through_the_app(tmp_path, medtune_home, demo_model):
    """The real server: alice compares her run by the API (table and chart points); bob is refused by ownership."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from jobs.status import JobStatus
    from jobs.store import JobStore
    from server_fixtures import password, start_server, write_users

    data = tmp_path / "data"
    files = create_job(TrainConfig(model="demo", data=str(ROOT / "data" / "train_sample.jsonl")), data)
    for step, value in ((1, 40.0), (2, 80.0)):
        files.append_metric({"step": step, "rouge-l:qa_val": value})
    store = JobStore(data)  # as a finished command line run of alice's leaves it
    store.register(files.job_id, "train", "alice", {"job_dir": str(files.dir)}, state=JobStatus.COMPLETED)
    store.close()
    server = start_server(data, medtune_home, "--users", str(write_users(tmp_path / "users.yaml")))
    try:
        alice = Client(server.url, auth=("alice", password("alice")), verbose=False)
        rows, chart, metric = alice.predict([files.job_id], None, api_name="/jobs_compare")
        assert metric["value"] == "rouge-l:qa_val" and rows["data"][0][0] == files.job_id
        headers = rows["headers"]
        assert rows["data"][0][headers.index("best rouge-l:qa_val")] == 80.0
        points = chart["value"]["data"] if "value" in chart else chart["data"]
        assert len(points) == 2
        bob = Client(server.url, auth=("bob", password("bob")), verbose=False)
        with pytest.raises(AppError, match="bob may not compare"):
            bob.predict([files.job_id], None, api_name="/jobs_compare")
    finally:
        server.stop()
