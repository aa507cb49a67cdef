"""The Evaluate tab over HTTP: a mixed multiple-choice + free-form run through gradio_client on the real app."""

from __future__ import annotations

import json
from pathlib import Path

from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent


def run_args(**changes):
    args = dict(models=["demo"], samples=["mc_sample.jsonl", "qa_sample.jsonl"], uploads=[], method="likelihood",
                batch_size=4, limit=3, shots=0, shots_file=None, max_new=8, system="你是一名医学助手。")
    return {**args, **changes}


def test_mixed_run_table_items_and_downloads(app_url):
    client = Client(app_url, verbose=False)
    upload = handle_file(str(ROOT / "data" / "mc_sample_competition.jsonl"))
    summary, table, chart, breakdown, item_set, items, downloads = client.predict(
        **run_args(uploads=[upload]), api_name="/evaluate_run")
    assert "1 model" in summary
    assert table["headers"][0] == "model" and [row[0] for row in table["data"]] == ["demo"]
    assert {"mc_sample · accuracy", "qa_sample · rouge-l", "qa_sample · bleu-4",
            "mc_sample_competition · accuracy"} <= set(table["headers"])
    assert len(chart["data"]) == 1 + 4 + 1, chart  # accuracy, four free-form metrics, accuracy
    assert items["headers"][:4] == ["line", "id", "question", "reference"] and len(items["data"]) == 3
    names = sorted(Path(d).name.split("__")[-1] for d in downloads)
    assert names == sorted(["predictions.jsonl", "items.jsonl", "report.json"] * 3)
    report = json.loads(Path(next(d for d in downloads if "qa_sample" in d and d.endswith("report.json")))
                        .read_text())
    assert report["method"] == "generate" and report["decoding"]["max_new_tokens"] == 8 and report["n"] == 3
    free_form = client.predict("qa_sample", api_name="/evaluate_items")
    assert "demo · rouge-l" in free_form["headers"] and len(free_form["data"]) == 3
    scores = [row[free_form["headers"].index("demo · rouge-l")] for row in free_form["data"]]
    assert scores == sorted(scores)  # worst first


def test_bad_input_is_a_clear_error(app_url, tmp_path):
    import pytest
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="Tick a bundled set"):
        client.predict(**run_args(samples=[]), api_name="/evaluate_run")
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"id": "1", "question": "q", "options": {"A": "x", "B": "y"}, "answer": "Q"}\n', encoding="utf-8")
    with pytest.raises(AppError, match=r"broken.jsonl:1"):
        client.predict(**run_args(samples=[], uploads=[handle_file(str(bad))]), api_name="/evaluate_run")
    assert "No evaluation" in client.predict(api_name="/evaluate_stop")


def test_predict_a_test_set_in_the_app(app_url, tmp_path):
    rows = [json.loads(line) for line in (ROOT / "data" / "mc_sample_competition.jsonl").read_text().splitlines()][:3]
    test = tmp_path / "exam.csv"
    test.write_text("no,input\n" + "".join(f'{i},"{r["input"]}"\n' for i, r in enumerate(rows)), encoding="utf-8")
    client = Client(app_url, verbose=False)
    summary, files = client.predict(["demo"], handle_file(str(test)), "answer", "letters", "", "likelihood", 4, 8,
                                    "你是一名医学助手。", api_name="/evaluate_predict")
    assert "3 answers" in summary and len(files) == 2
    submission = next(Path(f) for f in files if f.endswith(".csv"))
    import csv

    with submission.open(encoding="utf-8", newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["no", "input", "answer"] and [w[1] for w in written[1:]] == [r["input"] for r in rows]
    assert all(w[2] in "ABCDE" and len(w[2]) == 1 for w in written[1:])
    from evaluation.check import check_submission

    assert check_submission(test, submission, answer_field="answer").exit_status == 0


def test_the_long_items_control_reaches_the_job(app_url, tmp_path):
    """"Skip" on the page becomes the job's EvalConfig.long_items: the item longer than the demo model's context
    (1,024 tokens) is skipped and counted in the report, the results table and the summary."""
    qa = [json.loads(line) for line in (ROOT / "data" / "qa_sample.jsonl").read_text("utf-8").splitlines()[:2]]
    long_item = {"id": "long-1", "input": "患者自述病史：" + "".join(r["input"] for r in qa) * 40, "output": "偏头痛"}
    path = tmp_path / "long_set.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [qa[0], long_item]), encoding="utf-8")
    client = Client(app_url, verbose=False)
    summary, table, _, _, _, _, downloads = client.predict(
        **run_args(samples=[], uploads=[handle_file(str(path))], max_new=4, long_items="skip"),
        api_name="/evaluate_run")
    report = json.loads(Path(next(d for d in downloads if d.endswith("report.json"))).read_text())
    assert report["long_items"]["policy"] == "skip" and report["long_items"]["skipped_ids"] == ["long-1"], report
    assert report["long_items"]["truncated"] == 0
    row = dict(zip(table["headers"], table["data"][0]))
    assert row["long_set · skipped"] == 1, row
    assert "1 item(s) skipped" in summary, summary


def test_the_summary_counts_long_items_in_the_page_language():
    from types import SimpleNamespace

    from ui.evaluate_tab import long_items_note

    cells = [SimpleNamespace(report={"long_items": {"truncated": 2, "skipped": 0}}),
             SimpleNamespace(report={"long_items": {"truncated": 1, "skipped": 1}}), SimpleNamespace(report={})]
    assert "3 item(s) truncated, 1 item(s) skipped" in long_items_note(cells, "en")
    zh = long_items_note(cells, "zh")
    assert "3 道题已截断，1 道题已跳过" in zh and "item" not in zh, zh
    assert long_items_note(cells[2:], "en") == ""
