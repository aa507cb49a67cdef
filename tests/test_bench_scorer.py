"""bench/bench_scorer.py stands alone: --data, and the project's own samples (with a note) when the public subsets
beside the checkout are absent."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_scorer", ROOT / "bench" / "bench_scorer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_falls_back_to_the_projects_samples_with_a_note(tmp_path, monkeypatch):
    bench = _bench_module()
    monkeypatch.setattr(bench, "PUBLIC", tmp_path / "no-public-data")  # a user's checkout: no ../shared
    answers, pool, note = bench.answer_sets(None)
    assert len(answers) > 100 and pool == answers
    assert note.startswith("note: ") and "project's own samples" in note and "--data" in note


def test_runs_on_a_given_file():
    done = subprocess.run([sys.executable, "bench/bench_scorer.py", "--data", "data/qa_sample.jsonl",
                           "--long-pairs", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "data: data/qa_sample.jsonl" in done.stdout
    assert "huatuo-shuffled" in done.stdout and "True" in done.stdout  # ours equals the plain loop per sample
