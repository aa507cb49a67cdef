"""`python -m evaluation predict`: a submission in the test file's shape, from the always-"B" model (exact answers)
and the demo model; resume after a stop and after a half-written line; one file per model; CLI exit statuses."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import pytest

from evaluate_fixtures import build_always_b_model
from evaluation.check import check_submission
from evaluation.data import DataFileError
from evaluation.predict import PredictConfig, load_test_set, mc_answer_text, output_paths, predict
from evaluation.run import EvalCancelled

ROOT = Path(__file__).resolve().parent.parent
MC = ROOT / "data" / "mc_sample.jsonl"
MC_COMPETITION = ROOT / "data" / "mc_sample_competition.jsonl"
QA_COMPETITION = ROOT / "data" / "qa_sample_competition.jsonl"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from chat.registry import ModelRegistry

    return ModelRegistry(str(build_always_b_model(tmp_path_factory.mktemp("always-b"))),
                         tmp_path_factory.mktemp("predict-data"))


def unlabelled(source: Path, out: Path, drop=("output", "answer")) -> Path:
    """The sample set as a test file: answers removed, an extra field in the middle kept."""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    test = [{"id": f"t{i}", **{k: v for k, v in row.items() if k not in drop}, "note": f"n{i}"}
            for i, row in enumerate(rows)]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in test), encoding="utf-8")
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_test_file_without_answers_is_read(tmp_path):
    test = load_test_set(unlabelled(MC_COMPETITION, tmp_path / "t.jsonl"))
    assert test.task == "mc" and len(test.items) == 32 and all(i.answer == "" for i in test.items)
    assert load_test_set(unlabelled(QA_COMPETITION, tmp_path / "q.jsonl")).task == "qa"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "x\\nA. 1\\nB. 2"}\n{"question": 3}\n', encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        load_test_set(bad, "mc")
    assert err.value.problems[0].line == 2 and err.value.problems[0].field == "question"


@pytest.mark.parametrize("method", ["likelihood", "generate"])
def test_mc_submission_keeps_every_field_in_order(registry, tmp_path, method):
    test = unlabelled(MC_COMPETITION, tmp_path / "test.jsonl")
    [result] = predict(registry, PredictConfig(data=str(test), out=str(tmp_path / "sub.jsonl"), method=method))
    rows, source = read_jsonl(Path(result.out)), read_jsonl(test)
    assert [list(r) for r in rows] == [list(s) + ["output"] for s in source]  # fields kept, answer added last
    assert all(r["output"] == "B" for r in rows) and [r["input"] for r in rows] == [s["input"] for s in source]
    meta = json.loads(Path(result.meta).read_text())
    assert meta["method"] == method and meta["seed"] == 0 and meta["data"]["sha256"] and meta["unparsed"] == 0
    assert Path(result.meta).name == "sub.meta.json"
    assert (meta["decoding"] is None) == (method == "likelihood")
    assert check_submission(test, result.out).exit_status == 0


def test_options_field_json_array_answer_field_and_text_output(registry, tmp_path):
    rows = [{k: v for k, v in json.loads(line).items() if k != "answer"} for line in MC.read_text().splitlines()]
    test = tmp_path / "test.json"
    test.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    config = PredictConfig(data=str(test), out=str(tmp_path / "sub.json"), answer_field="pred", mc_output="both")
    [result] = predict(registry, config)
    written = json.loads(Path(result.out).read_text(encoding="utf-8"))
    assert isinstance(written, list) and len(written) == len(rows)
    assert all(w["pred"] == f"B. {r['options']['B']}" for w, r in zip(written, rows))
    assert check_submission(test, result.out, answer_field="pred", letters_only=False).exit_status == 0
    assert check_submission(test, result.out, answer_field="pred").exit_status == 4  # not letters


def test_free_form_csv_in_csv_out(registry, tmp_path):
    rows = read_jsonl(QA_COMPETITION)[:5]
    test = tmp_path / "test.csv"
    with test.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "input", "output"])
        writer.writerows([[f"q{i}", r["input"], ""] for i, r in enumerate(rows)])
    config = PredictConfig(data=str(test), out=str(tmp_path / "sub.csv"), max_new_tokens=4,
                           postprocess=("collapse_whitespace", "fit=3"))
    [result] = predict(registry, config)
    with open(result.out, encoding="utf-8", newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["id", "input", "output"] and len(written) == 6
    assert [w[1] for w in written[1:]] == [r["input"] for r in rows]
    assert all(w[2] == "BBB" for w in written[1:])  # "B", padded to the fitted length
    assert json.loads(Path(result.meta).read_text())["postprocess"] == ["collapse_whitespace", "fit=3"]


def test_resume_after_a_stop_and_a_half_written_line(registry, tmp_path):
    test = unlabelled(MC_COMPETITION, tmp_path / "test.jsonl")
    config = PredictConfig(data=str(test), out=str(tmp_path / "sub.jsonl"), batch_size=8)
    stop = threading.Event()

    def stop_after_two_batches(p):
        if p.done >= 16:
            stop.set()

    with pytest.raises(EvalCancelled):
        predict(registry, config, progress=stop_after_two_batches, stop=stop)
    log = tmp_path / "sub.progress.jsonl"
    assert len(log.read_text().splitlines()) == 1 + 16 and not (tmp_path / "sub.jsonl").exists()
    with log.open("a") as handle:  # a kill in the middle of writing the next batch
        handle.write('{"line": 99, "lett')
    [result] = predict(registry, config)
    assert result.answered_now == 16 and result.n == 32
    assert [r["output"] for r in read_jsonl(Path(result.out))] == ["B"] * 32
    [again] = predict(registry, config)  # complete: nothing left to answer
    assert again.answered_now == 0
    # Other settings do not reuse the log's answers.
    [other] = predict(registry, PredictConfig(data=str(test), out=str(tmp_path / "sub.jsonl"), method="generate"))
    assert other.answered_now == 32


def test_several_models_write_one_file_each():
    assert output_paths("out/sub.jsonl", ["demo"]) == [Path("out/sub.jsonl")]
    assert output_paths("out/sub.jsonl", ["demo", "my adapter"]) == [Path("out/sub-demo.jsonl"),
                                                                    Path("out/sub-my_adapter.jsonl")]
    options = {"A": "甲", "B": "乙", "D": "丁"}
    assert [mc_answer_text("BD", options, m) for m in ("letters", "text", "both")] == [
        "BD", "乙；丁", "B. 乙；D. 丁"]
    assert mc_answer_text("", options, "both") == ""


def test_cli_predict_then_check_with_the_demo_model(demo_model, tmp_path, capsys):
    from evaluation.cli import main

    test = unlabelled(QA_COMPETITION, tmp_path / "test.jsonl")
    out = tmp_path / "sub.jsonl"
    args = ["predict", "--data", str(test), "--out", str(out), "--max-new-tokens", "4", "--data-dir",
            str(tmp_path / "runs")]
    assert main(args) == 0
    assert len(read_jsonl(out)) == 32 and "32 answers" in capsys.readouterr().out
    assert main(["check", "--test", str(test), "--pred", str(out)]) == 0
    assert main(["score", "--ref", str(test), "--pred", str(out)]) == 0  # no answers: checked, not scored
    assert "not scored" in capsys.readouterr().out
    assert main(args[:-2] + ["--data-dir", str(tmp_path / "runs"), "--adapter", str(tmp_path / "nope")]) == 6
    assert main(["predict", "--data", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 3
    assert main(args + ["--postprocess", "cut=0"]) == 2


def test_one_submission_per_model_with_an_adapter(registry, tmp_path):
    from chat_fixtures import build_adapter

    adapter = registry.add_adapter(str(build_adapter(Path(registry.base_name), tmp_path / "lora", seed=1)))
    test = unlabelled(MC_COMPETITION, tmp_path / "test.jsonl")
    results = predict(registry, PredictConfig(data=str(test), out=str(tmp_path / "sub.jsonl"),
                                              models=(None, adapter)))
    from evaluation.run import _slug

    names = [f"sub-{_slug(registry.base_name)}.jsonl", f"sub-{_slug(adapter)}.jsonl"]
    assert [Path(r.out).name for r in results] == names
    metas = [json.loads(Path(r.meta).read_text()) for r in results]
    assert metas[0]["adapter"] is None and metas[1]["adapter"] == adapter and metas[1]["adapter_sha256"]
    assert all(check_submission(test, r.out).exit_status == 0 for r in results)


def test_run_on_a_test_file_points_to_predict(tmp_path, capsys):
    from evaluation.cli import main

    test = unlabelled(QA_COMPETITION, tmp_path / "test.jsonl")
    assert main(["run", "--data", str(test), "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)]) == 3
    assert "python -m evaluation predict" in capsys.readouterr().err


def test_resume_after_a_real_kill(demo_model, tmp_path):
    """The CLI killed (SIGKILL) in the middle of a run: the same command again answers only what is left."""
    import os
    import signal
    import subprocess
    import sys
    import time

    test = unlabelled(QA_COMPETITION, tmp_path / "test.jsonl")
    out, log = tmp_path / "sub.jsonl", tmp_path / "sub.progress.jsonl"
    command = [sys.executable, "-m", "evaluation", "predict", "--data", str(test), "--out", str(out),
               "--batch-size", "1", "--max-new-tokens", "24", "--data-dir", str(tmp_path / "runs")]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and len(log.read_text(encoding="utf-8").splitlines()) >= 1 + 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(log.read_text(encoding="utf-8").splitlines()) - 1
    assert 3 <= done < 32 and not out.exists(), done
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    answered_now = int(finished.stdout.split("(")[1].split(" answered now")[0])
    assert abs((32 - answered_now) - done) <= 1  # a line half written when killed is answered again
    assert len(read_jsonl(out)) == 32
