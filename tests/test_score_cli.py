"""`python -m evaluation score`: reports, JSON keys, per-item rows, and a distinct exit status per failure."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.cli import main

ROOT = Path(__file__).resolve().parent.parent
MC_REF = [
    {"id": "q1", "question": "室上性心动过速首选", "options": {"A": "胺碘酮", "B": "腺苷", "C": "阿托品"}, "answer": "B",
     "category": "内科"},
    {"id": "q2", "question": "属于β受体阻滞剂的是（多选）", "options": {"A": "美托洛尔", "B": "硝苯地平", "C": "比索洛尔"},
     "answer": "AC", "category": "药理"},
    {"id": "q3", "question": "成人正常空腹血糖上限", "options": {"A": "5.6", "B": "7.0", "C": "11.1"}, "answer": "B",
     "category": "内科"},
]
QA_REF = [{"input": "高血压患者饮食注意什么？", "output": "低盐低脂饮食，每日食盐不超过5克，戒烟限酒。"},
          {"input": "感冒发烧怎么办？", "output": "多休息多饮水，体温超过38.5度可服用退热药。"}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def mc_ref(tmp_path):
    return write_jsonl(tmp_path / "ref.jsonl", MC_REF)


@pytest.fixture
def qa_ref(tmp_path):
    return write_jsonl(tmp_path / "qa_ref.jsonl", QA_REF)


def score(*args):
    return main(["score", *map(str, args)])


def test_valid_mc_predictions_exit_0_with_json_and_per_item(tmp_path, mc_ref, capsys):
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"id": "q1", "output": "答案：B"}, {"id": "q2", "output": "C、A"},
                                                 {"id": "q3", "output": "A"}])
    report_path, items_path = tmp_path / "r.json", tmp_path / "items.jsonl"
    assert score("--ref", mc_ref, "--pred", pred, "--json", report_path, "--per-item", items_path) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "66.67" in out and "No problems found" in out and "内科" in out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert {"task", "n", "accuracy", "score", "problems", "conventions"} <= set(report)
    assert report["task"] == "mc" and report["n"] == 3 and report["score"] == report["accuracy"] == 66.6667
    assert report["breakdown"]["answer_type"]["multi-answer"]["accuracy"] == 100.0
    items = [json.loads(line) for line in items_path.read_text(encoding="utf-8").splitlines()]
    assert [(i["id"], i["extracted"], i["correct"]) for i in items] == [("q1", "B", True), ("q2", "AC", True),
                                                                         ("q3", "A", False)]


def test_valid_qa_predictions_by_order_with_weights(tmp_path, qa_ref):
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"input": r["input"], "output": r["output"]} for r in QA_REF])
    report_path = tmp_path / "r.json"
    assert score("--ref", qa_ref, "--pred", pred, "--json", report_path, "--weights", "rouge-l=1,bleu-4=1") == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["task"] == "qa" and report["alignment"] == "order"
    for key in ("rouge-1", "rouge-2", "rouge-l", "bleu-4", "score"):
        assert report[key] == pytest.approx(100.0)
    assert set(report["conventions"]) >= {"rouge-1", "rouge-2", "rouge-l", "bleu-4", "score", "decoding"}
    assert "jieba" in report["conventions"]["rouge-l"] and "smoothing method 3" in report["conventions"]["bleu-4"]


def test_reference_malformed_exit_3(tmp_path, capsys):
    ref = tmp_path / "ref.jsonl"
    ref.write_text(json.dumps(MC_REF[0], ensure_ascii=False) + "\n{broken\n", encoding="utf-8")
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"id": "q1", "output": "B"}])
    assert score("--ref", ref, "--pred", pred) == 3
    err = capsys.readouterr().err
    assert f"{ref}" in err and "line 2" in err and "reference file is malformed" in err


def test_predictions_malformed_exit_4_still_scores(tmp_path, mc_ref, capsys):
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"id": "q1", "output": "B"}\n{"id": "q2" "output": "AC"}\n{"id": "q3", "output": 2}\n',
                    encoding="utf-8")
    report_path = tmp_path / "r.json"
    assert score("--ref", mc_ref, "--pred", pred, "--json", report_path) == 4
    report = json.loads(report_path.read_text(encoding="utf-8"))
    kinds = {(p["line"], p["kind"]) for p in report["problems"]}
    assert {(2, "bad_json"), (3, "bad_output")} <= kinds
    assert {(None, "missing_prediction")} <= kinds and report["accuracy"] == pytest.approx(33.3333)
    assert "predictions file is malformed" in capsys.readouterr().out


def test_unreadable_predictions_exit_4(tmp_path, mc_ref, capsys):
    pred = tmp_path / "pred.jsonl"
    pred.write_bytes('{"id": "q1", "output": "答案是B"}\n'.encode("gb18030"))
    assert score("--ref", mc_ref, "--pred", pred) == 4
    assert "GB18030" in capsys.readouterr().err


def test_mismatch_exit_5(tmp_path, mc_ref):
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"id": "q1", "output": "B"}, {"id": "q1", "output": "A"},
                                                 {"id": "q9", "output": "A"}, {"id": "q3", "output": ""}])
    report_path = tmp_path / "r.json"
    assert score("--ref", mc_ref, "--pred", pred, "--json", report_path) == 5
    problems = json.loads(report_path.read_text(encoding="utf-8"))["problems"]
    assert [(p["line"], p["id"], p["kind"]) for p in problems] == [
        (2, "q1", "duplicate_id"), (3, "q9", "unknown_id"), (4, "q3", "empty_output"), (None, "q2", "missing_prediction")]
    assert all(p["message"] and p["fix"] for p in problems)


def test_order_mismatch_exit_5(tmp_path, qa_ref):
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"input": QA_REF[1]["input"], "output": "多休息"},
                                                 {"input": QA_REF[0]["input"], "output": "低盐"},
                                                 {"input": "多出来的一行", "output": "x"}])
    report_path = tmp_path / "r.json"
    assert score("--ref", qa_ref, "--pred", pred, "--json", report_path) == 5
    kinds = [(p["line"], p["kind"]) for p in json.loads(report_path.read_text(encoding="utf-8"))["problems"]]
    assert kinds == [(1, "input_mismatch"), (2, "input_mismatch"), (3, "extra_row")]


def test_task_override_and_bad_usage(tmp_path, qa_ref, capsys):
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"output": "x"}, {"output": "y"}])
    assert score("--ref", qa_ref, "--pred", pred, "--task", "mc") == 3  # not multiple choice: reference unusable
    with pytest.raises(SystemExit) as exit_info:
        score("--ref", qa_ref, "--pred", pred, "--weights", "accuracy=1")
    assert exit_info.value.code == 2 and "rouge-l" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--ref", qa_ref])
    assert exit_info.value.code == 2


def test_module_entry_point_runs(tmp_path, mc_ref):
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"id": "q1", "output": "B"}])
    done = subprocess.run([sys.executable, "-m", "evaluation", "score", "--ref", mc_ref, "--pred", pred],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 5 and "missing_prediction" in done.stdout and "Exit status 5" in done.stdout


def test_empty_reference_answer_is_a_reference_problem(tmp_path, capsys):
    ref = write_jsonl(tmp_path / "ref.jsonl", [QA_REF[0], {"input": "咳嗽怎么办", "output": "  "}])
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"output": "x"}, {"output": "y"}])
    assert score("--ref", ref, "--pred", pred) == 3
    assert "line 2" in capsys.readouterr().err


def test_bundled_samples_report_every_planted_problem(tmp_path):
    """data/README.md lists the problems planted in the sample predictions; the scorer finds each, and no other."""
    report_path = tmp_path / "mc.json"
    assert score("--ref", ROOT / "data/mc_sample.jsonl", "--pred", ROOT / "data/mc_sample_predictions.jsonl",
                 "--json", report_path) == 4
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert [(p["line"], p["id"], p["kind"]) for p in report["problems"]] == [
        (13, "mc-013", "bad_output"), (20, "mc-021", "empty_output"), (24, "mc-009", "duplicate_id"),
        (26, "mc-026", "unparsed_answer"), (33, "mc-099", "unknown_id"), (None, "mc-017", "missing_prediction")]
    assert report["accuracy"] == 62.5

    assert score("--ref", ROOT / "data/qa_sample_competition.jsonl", "--pred",
                 ROOT / "data/qa_sample_predictions.jsonl", "--json", report_path) == 4
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert [(p["line"], p["kind"]) for p in report["problems"]] == [
        (7, "empty_output"), (22, "input_mismatch"), (28, "bad_output")]


def test_long_answers_are_cut_and_reported_on_their_line(tmp_path, mc_ref, qa_ref, capsys):
    # Issue 11, item 7: an answer of millions of characters is cut to --max-answer-chars before extraction and
    # ROUGE/BLEU, with a warning naming its line, id and field; the exit status stays 0 (a warning).
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"id": "q1", "output": "答案：B"},
                                                 {"id": "q2", "output": "答案：AC。" + "解析" * 60},
                                                 {"id": "q3", "output": "答案：B" + "。" * 200_000}])
    report_path = tmp_path / "r.json"
    assert score("--ref", mc_ref, "--pred", pred, "--json", report_path, "--max-answer-chars", 100) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    cut = [p for p in report["problems"] if p["kind"] == "answer_too_long"]
    assert [(p["line"], p["id"], p["severity"]) for p in cut] == [(2, "q2", "warning"), (3, "q3", "warning")]
    assert "field 'output'" in cut[1]["message"] and "200,004 characters" in cut[1]["message"]
    assert "first 100" in cut[1]["message"] and "100" in report["conventions"]["answer_length"]
    assert report["accuracy"] == 100.0  # the cut keeps each answer's statement
    assert "(answer_too_long)" in capsys.readouterr().out


def test_default_cap_applies_to_free_form_answers(tmp_path, qa_ref):
    from evaluation.submission import DEFAULT_MAX_ANSWER_CHARS, score_submission

    long_answer = QA_REF[0]["output"] * (DEFAULT_MAX_ANSWER_CHARS // len(QA_REF[0]["output"]) + 10)
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"output": long_answer}, {"output": QA_REF[1]["output"]}])
    report = score_submission(qa_ref, pred)
    assert [(p.line, p.kind) for p in report.problems] == [(1, "answer_too_long")]
    assert len(report.items[0]["prediction"]) == DEFAULT_MAX_ANSWER_CHARS
    assert f"{DEFAULT_MAX_ANSWER_CHARS:,}" in report.to_dict()["conventions"]["answer_length"]


def test_max_answer_chars_must_be_positive(tmp_path, mc_ref, capsys):
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"id": "q1", "output": "B"}])
    with pytest.raises(SystemExit) as exit_info:
        score("--ref", mc_ref, "--pred", pred, "--max-answer-chars", "0")
    assert exit_info.value.code == 2 and "--max-answer-chars" in capsys.readouterr().err
