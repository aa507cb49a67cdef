"""bench/gpu_check.py cannot rot: `--smoke` runs every part's code on the CPU with tiny shapes, prints one table and
writes JSON lines; a part past its time box is reported as such while the others keep their figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.py"


def run(tmp_path, *args, timeout=400):
    out = tmp_path / "check.jsonl"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json-out", str(out), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return proc, rows


def test_smoke_runs_every_part_and_writes_one_line_per_figure(tmp_path, demo_model):
    proc, rows = run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "part   figure" in proc.stdout  # the table
    assert {r["part"] for r in rows} == {"train", "qlora", "chat", "eval"}
    for r in rows:
        assert r["bench"] == "gpu_check" and r["smoke"] is True
        assert isinstance(r["value"], (int, float)) and r["value"] > 0, r
    qlora = [r for r in rows if r["part"] == "qlora"]
    expected = "ok" if torch.cuda.is_available() else "skipped: no CUDA"
    assert [r["status"] for r in qlora] == [expected]
    assert all(r["status"] == "ok" for r in rows if r["part"] != "qlora")
    chat = [r for r in rows if r["part"] == "chat"]
    assert len(chat) == 8 and all(r["dtype"] == "bfloat16" and r["ttft_s"] > 0 for r in chat)


def test_a_part_past_its_time_box_is_reported_and_fails_the_run(tmp_path):
    proc, rows = run(tmp_path, "--parts", "eval", "--time-box", "1", timeout=120)
    assert proc.returncode == 1
    assert [(r["part"], r["status"]) for r in rows] == [("eval", "timed out after 1 s")]
    assert "timed out after 1 s" in proc.stdout
