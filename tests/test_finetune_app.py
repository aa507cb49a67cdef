"""The Fine-tune tab over HTTP with gradio_client: preview a file, start a job, follow it to the end, re-attach."""

import time

from gradio_client import Client, handle_file

from finetune.config import TrainConfig
from tests.finetune_fixtures import write_alpaca
from ui.finetune_tab import SETTINGS


def settings(**changes) -> list:
    """The settings widgets' values in the tab's order, as the browser would send them."""
    cfg = TrainConfig(**changes)
    values = []
    for name, _ in SETTINGS:
        value = getattr(cfg, name)
        values.append("\n".join(value) if isinstance(value, list) else value)
    return values


def test_preview_start_and_follow_a_job_to_the_end(app_url, tiny_chat_model, tmp_path):
    client = Client(app_url, verbose=False)
    data = write_alpaca(tmp_path / "qa.jsonl")
    with data.open("a", encoding="utf-8") as f:
        f.write('{"instruction": "头痛？", "output": 3}\n')
    model = str(tiny_chat_model)

    summary, rejected, examples = client.predict(model, handle_file(str(data)), None, "auto", "", 256,
                                                 api_name="/finetune_preview")
    assert "**6** of 7 rows kept (alpaca)" in summary
    assert rejected["data"] == [[7, "output", "expected a string, got int (3)"]]
    trained = [e["token"] for e in examples if e["class_or_confidence"] == "trained"]
    assert trained and trained[0].endswith("<|im_end|>\n")

    values = settings(max_steps=8, batch_size=2, logging_steps=2, eval_steps=4, save_steps=4, sample_every=4,
                      val_split=1, learning_rate=1e-2, sample_max_new_tokens=8, adapter_name="app-run")
    update = client.predict(model, handle_file(str(data)), None, "auto", "", *values, api_name="/finetune_start")
    job = update["value"]  # the job picker's update: the new job, selected, with the refreshed list
    assert job in [c[0] for c in update["choices"]]

    deadline, steps_seen = time.time() + 180, set()
    while True:
        status_md, plot, log, samples, status = client.predict(job, api_name="/finetune_status")
        steps_seen.add(status.get("step", 0))
        if status["state"] in ("completed", "failed", "stopped") or time.time() > deadline:
            break
        time.sleep(1)
    assert status["state"] == "completed", log
    assert status["step"] == status["total_steps"] == 8 and status["tokens_per_s"] > 0
    assert "step 8/8" in status_md and "app-run" in status_md
    series = {row["series"] for row in plot["value"]["data"]} if "value" in plot else {r[2] for r in plot["data"]}
    # With a validation split the adapter is the checkpoint with the best eval loss: its step is marked (issue 13).
    assert series == {"train", "validation", f"best eval_loss @ {status['best_step']}"}
    assert "adapter saved" in log and "**step 4**" in samples

    # A fresh client (a reloaded page) finds the job in the list and reads the same finished state.
    job_update = Client(app_url, verbose=False).predict(None, api_name="/finetune_jobs")
    assert job_update["value"] == job
