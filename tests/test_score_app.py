"""The "Score a submission" tab, driven over HTTP with gradio_client against the running app."""

import json

from gradio_client import Client, handle_file



def call_score(url, sample, reference=None, predictions=None, task="auto", weights=""):
    client = Client(url, verbose=False)
    return client.predict(sample, reference and handle_file(reference), predictions and handle_file(predictions),
                          task, weights, api_name="/score_submission")


def test_bundled_mc_sample_reports_scores_and_problems(app_url):
    summary, scores, problems, items, downloads = call_score(app_url, "mc_sample")
    assert "Score 62.50" in summary and "is malformed" in summary
    metric_names = [row[0] for row in scores["data"]]
    assert metric_names[:2] == ["accuracy", "unparsed"] and "score" in metric_names
    kinds = {row[3] for row in problems["data"]}
    assert {"duplicate_id", "unknown_id", "missing_prediction", "empty_output", "bad_output"} <= kinds
    columns = items["headers"]
    assert columns[:3] == ["line", "id", "correct"] and items["data"][0][2] is False  # worst first
    report = json.loads(open(downloads[0], encoding="utf-8").read())
    assert report["task"] == "mc" and report["n"] == 32 and report["exit_status"] == 4


def test_uploaded_free_form_files(app_url, tmp_path):
    ref, pred = tmp_path / "ref.jsonl", tmp_path / "pred.jsonl"
    rows = [{"id": "a", "input": "头痛怎么办", "output": "注意休息，必要时服用布洛芬。"},
            {"id": "b", "input": "发烧怎么办", "output": "多饮水，体温高于38.5度服退热药。"}]
    ref.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    pred.write_text('{"id": "a", "output": "注意休息，必要时服用布洛芬。"}\n{"id": "b", "output": "去医院"}\n',
                    encoding="utf-8")
    summary, scores, problems, items, downloads = call_score(app_url, "none", ref, pred)
    assert "The file is valid" in summary and problems["data"] == []
    assert items["data"][0][1] == "b" and items["data"][1][2] == 100.0  # worst first by ROUGE-L
    assert len(downloads) == 2


def test_malformed_reference_shows_its_problems(app_url, tmp_path):
    ref, pred = tmp_path / "ref.jsonl", tmp_path / "pred.jsonl"
    ref.write_text('{"input": "头痛怎么办", "output": "休息"}\n{"input": "发烧"}\n', encoding="utf-8")
    pred.write_text('{"output": "休息"}\n', encoding="utf-8")
    summary, scores, problems, items, downloads = call_score(app_url, "none", ref, pred)
    assert "reference file is malformed" in summary
    assert problems["data"][0][1] == 2 and "'output'" in problems["data"][0][4]


def test_a_test_file_without_answers_is_checked_not_scored(app_url, tmp_path):
    test, pred = tmp_path / "test.jsonl", tmp_path / "sub.jsonl"
    rows = [{"id": "a", "input": "首选药物是\nA. 甲\nB. 乙"}, {"id": "b", "input": "首选检查是\nA. 丙\nB. 丁"}]
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    pred.write_text("".join(json.dumps({**r, "output": a}, ensure_ascii=False) + "\n"
                            for r, a in zip(rows, ["B", "E"])), encoding="utf-8")
    summary, scores, problems, items, downloads = call_score(app_url, "none", test, pred)
    assert "not scored" in summary and "is malformed" in summary
    assert scores is None or not scores.get("data")
    assert [(row[1], row[3]) for row in problems["data"]] == [(2, "letter_not_option")]
    assert json.loads(open(downloads[0], encoding="utf-8").read())["exit_status"] == 4


def test_what_if_table(app_url):
    client = Client(app_url, verbose=False)
    table = client.predict("qa_sample", None, None, api_name="/score_what_if")
    names = [row[0] for row in table["data"]]
    assert names[0] == "none" and "strip_markdown" in names and names[-1].startswith("all: ")
    assert table["headers"][1:] == ["rouge-1", "rouge-2", "rouge-l", "bleu-4"]
