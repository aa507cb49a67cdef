"""Remote models against a real engine: `transformers serve` on the demo model's directory, started on 127.0.0.1 with
a free port and stopped by its pid. Greedy answers, streaming and Evaluate scores equal the in-process ones.

`transformers serve` gives no log-probabilities and no /tokenize, so multiple choice through it is scored by
generation plus answer extraction, and the report says why (vLLM's likelihood path is tested against vLLM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from remote_fixtures import start_transformers_serve, stop_process

from chat.panes import stream_panes
from evaluation.run import EvalConfig, evaluate
from models.directory import ModelDirectory
from models.local.registry import ModelRegistry
from models.remote.endpoints import Endpoint
from models.settings import GenerationSettings

ROOT = Path(__file__).resolve().parent.parent
QA = str(ROOT / "data" / "qa_sample.jsonl")
MC = str(ROOT / "data" / "mc_sample.jsonl")
QA_COMPETITION = ROOT / "data" / "qa_sample_competition.jsonl"
MC_COMPETITION = ROOT / "data" / "mc_sample_competition.jsonl"
ASK = [{"role": "system", "content": "你是一名专业、严谨的医学助手。"},
       {"role": "user", "content": "高血压患者饮食要注意什么？"}]


@pytest.fixture(scope="module")
def served(demo_model, tmp_path_factory):
    process, url = start_transformers_serve(demo_model, tmp_path_factory.mktemp("serve-cache"))
    yield url
    stop_process(process)


@pytest.fixture(scope="module")
def directory(served, demo_model):
    # transformers serve lists nothing offline and answers to the directory it was started with: name it.
    registry = ModelRegistry(str(demo_model))
    return ModelDirectory(registry, [Endpoint("serve", served, models=(str(demo_model),), timeout_s=120)])


def test_greedy_answer_equals_in_process(directory, demo_model):
    settings = GenerationSettings(max_new_tokens=32)
    remote = directory.model_for(f"{demo_model}@serve")
    assert remote.where == "serve" and remote.identity()["endpoint_url"].startswith("http://127.0.0.1:")
    local = directory.model_for(None)
    assert remote.generate([ASK], settings) == local.generate([ASK], settings)


def test_streaming_reaches_the_pane_token_by_token(directory, demo_model):
    name = f"{demo_model}@serve"
    states = [(s.texts[0], s.tokens[0], s.finished) for s in
              stream_panes(directory, [(name, ASK)], GenerationSettings(max_new_tokens=24))]
    texts = [t for t, _, _ in states]
    assert states[-1][2] and states[-1][1] >= 10
    assert len(set(texts)) >= 10 and all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # grows piece by piece


def test_evaluate_through_the_server_equals_in_process(directory, demo_model, tmp_path):
    config = EvalConfig(data=(QA, MC), out_dir=str(tmp_path), models=(None, f"{demo_model}@serve"),
                        method="likelihood", limit=6, qa_max_new_tokens=24, mc_max_new_tokens=8, concurrency=4)
    cells = {(c.model, c.task): c for c in evaluate(directory, config)}
    local_qa, remote_qa = cells[(str(demo_model), "qa")], cells[(f"{demo_model}@serve", "qa")]
    assert [r["output"] for r in remote_qa.rows] == [r["output"] for r in local_qa.rows]
    assert remote_qa.metrics == local_qa.metrics
    report = remote_qa.report
    assert report["served_model"] == str(demo_model) and report["endpoint_url"].startswith("http://127.0.0.1:")
    remote_mc = cells[(f"{demo_model}@serve", "mc")].report
    assert remote_mc["method"] == "generate" and "log-probabilities" in remote_mc["scored_by"]["fallback_reason"]
    assert cells[(str(demo_model), "mc")].report["method"] == "likelihood"


def test_evaluation_cli_with_endpoint(served, demo_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SERVE_TEST_KEY", "sk-never-written-anywhere")
    done = subprocess.run([sys.executable, "-m", "evaluation", "run", "--endpoint", f"serve={served}",
                           "--endpoint-key", "serve=SERVE_TEST_KEY", "--model", str(demo_model), "--data", QA,
                           "--limit", "4", "--max-new-tokens", "8", "--concurrency", "2", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [report_path] = tmp_path.glob("*/qa_sample-*/report.json")
    report = json.loads(report_path.read_text())
    assert report["endpoint"] == "serve" and report["timing"]["concurrency"] == 2
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file()) + done.stdout + done.stderr
    assert "sk-never-written-anywhere" not in written and "SERVE_TEST_KEY" not in written


def test_predict_through_the_server_equals_in_process(served, directory, demo_model, tmp_path, monkeypatch, capsys):
    """`evaluation predict --endpoint`: the free-form submission (greedy) equals the in-process one line for line;
    multiple choice falls back to generation (no log-probabilities) and the meta says why; no key is written."""
    from evaluation.cli import main
    from evaluation.predict import PredictConfig, predict

    monkeypatch.setenv("SERVE_TEST_KEY", "sk-never-written-anywhere")
    tests = {}
    for task, source in (("qa", QA_COMPETITION), ("mc", MC_COMPETITION)):  # as test files: no answers
        rows = [json.loads(line) for line in Path(source).read_text(encoding="utf-8").splitlines()[:6]]
        tests[task] = tmp_path / f"test-{task}.jsonl"
        tests[task].write_text("".join(json.dumps({"id": f"t{i}", **{k: v for k, v in r.items() if k != "output"}},
                                                  ensure_ascii=False) + "\n" for i, r in enumerate(rows)),
                               encoding="utf-8")
    flags = ["--endpoint", f"serve={served}", "--endpoint-key", "serve=SERVE_TEST_KEY", "--model", str(demo_model),
             "--max-new-tokens", "16", "--mc-max-new-tokens", "8", "--concurrency", "3"]
    for task in tests:
        assert main(["predict", *flags, "--data", str(tests[task]), "--out", str(tmp_path / f"remote-{task}.jsonl")]) \
            == 0, capsys.readouterr().err
    config = PredictConfig(data=str(tests["qa"]), out=str(tmp_path / "local-qa.jsonl"), max_new_tokens=16)
    [local] = predict(directory, config)  # the in-process base of the same directory
    remote_rows = Path(tmp_path / "remote-qa.jsonl").read_text(encoding="utf-8")
    assert remote_rows == Path(local.out).read_text(encoding="utf-8")
    assert sum(bool(json.loads(line)["output"]) for line in remote_rows.splitlines()) >= 5  # answers, not blanks
    meta = json.loads((tmp_path / "remote-qa.meta.json").read_text())
    assert meta["model"] == f"{demo_model}@serve" and meta["endpoint_url"].startswith("http://127.0.0.1:")
    assert meta["scored_by"]["way"] == "generation" and meta["timing"]["concurrency"] == 3
    mc_meta = json.loads((tmp_path / "remote-mc.meta.json").read_text())
    assert mc_meta["method"] == "generate" and "log-probabilities" in mc_meta["scored_by"]["fallback_reason"]
    assert len((tmp_path / "remote-mc.jsonl").read_text().splitlines()) == 6
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file()) + "".join(capsys.readouterr())
    assert "sk-never-written-anywhere" not in written and "SERVE_TEST_KEY" not in written
