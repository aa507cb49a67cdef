"""Tasks as data, one reader, one problem type, one atomic file write (issue 15): a new kind of task is one record;
training data and evaluation files read the same; problems render in the page's language."""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from evaluation import tasks
from evaluation.data import Row, parse_qa_row, read_rows
from evaluation.report import render_text
from evaluation.run_cli import results_table
from evaluation.submission import score_submission
from evaluation.tasks import FREE_FORM, MULTIPLE_CHOICE, TASKS, Task, get_task, load_dataset
from finetune.formats import load_data
from hosting.users import UsersError, read_users_file
from safeio.atomic import copy_file, write_bytes, write_text
from safeio.problems import Problem
from safeio.records import read_records
from ui.problems import fix_text, problem_line, problem_text

DATA = Path(__file__).resolve().parent.parent / "data"


def jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# Task records


def test_records_hold_what_the_code_used_to_branch_on():
    assert MULTIPLE_CHOICE.metrics == ("accuracy",) and MULTIPLE_CHOICE.default_weights == {"accuracy": 1.0}
    assert FREE_FORM.main_metric == "rouge-l" and set(FREE_FORM.metrics) == {"rouge-1", "rouge-2", "rouge-l", "bleu-4"}
    assert MULTIPLE_CHOICE.methods == ("likelihood", "generate") and FREE_FORM.methods == ("generate",)
    assert MULTIPLE_CHOICE.answers_are_letters and MULTIPLE_CHOICE.supports_circular
    assert not MULTIPLE_CHOICE.postprocess_applies and FREE_FORM.postprocess_applies
    assert not (FREE_FORM.answers_are_letters or FREE_FORM.can_score_by_likelihood or FREE_FORM.supports_circular)
    with pytest.raises(ValueError, match="unknown task 'nope'.*mc, qa"):
        get_task("nope")


def test_scorer_and_model_runs_summarise_with_one_set_of_keys():
    """The scorer's rows and a run's rows go through the same scoring and summary: same metrics, same breakdowns."""
    items = load_dataset(DATA / "mc_sample.jsonl").items
    answers = ["答案是 B"] * len(items)
    scored = MULTIPLE_CHOICE.score_answers(items, answers, [True] * len(items))
    metrics, breakdown = MULTIPLE_CHOICE.summarise(scored)
    assert metrics["accuracy"] == pytest.approx(100 * sum(i.answer == "B" for i in items) / len(items))
    assert set(breakdown) == {"answer_type", "category"}
    assert sum(g["n"] for g in breakdown["answer_type"].values()) == len(items)
    ref = DATA / "mc_sample.jsonl"
    report = score_submission(ref, _predictions(ref, answers))
    assert report.metrics == metrics and report.breakdown == breakdown


def _predictions(ref: Path, answers) -> Path:
    items = load_dataset(ref).items
    path = ref.parent.parent / ".pytest_cache" / f"pred-{os.getpid()}.jsonl"
    path.parent.mkdir(exist_ok=True)
    return jsonl(path, [{"id": i.id, "output": a} for i, a in zip(items, answers)])


def _exact_match(items, answers, answered):
    return [{"exact": 100.0 * (a.strip() == i.output.strip()), "source": i.source} for i, a in zip(items, answers)]


EXACT = Task(name="exact", title="exact answers", metrics=("exact",), main_metric="exact", parse_row=parse_qa_row,
             score_answers=_exact_match, summarise_rows=lambda rows: {
                 "exact": sum(r["exact"] for r in rows) / len(rows)},
             breakdown_by=("source",), group_metrics=("exact",),
             item_columns=("line", "id", "exact", "prediction"), sort_by=("exact", "line"),
             item_score=lambda row: row["exact"], conventions={"exact": "100 when the answer equals the reference"})


def test_a_new_kind_of_task_is_one_new_record(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, "exact", EXACT)
    ref = jsonl(tmp_path / "ref.jsonl", [{"id": "a", "input": "1+1", "output": "2", "source": "s1"},
                                         {"id": "b", "input": "2+2", "output": "4", "source": "s2"}])
    pred = jsonl(tmp_path / "pred.jsonl", [{"id": "a", "output": "2"}, {"id": "b", "output": "5"}])
    report = score_submission(ref, pred, task="exact")
    assert report.metrics == {"exact": 50.0} and report.score == 50.0 and report.exit_status == 0
    assert report.breakdown["source"]["s2"] == {"n": 1, "exact": 0.0}
    assert "Task: exact answers" in render_text(report) and "exact" in report.to_dict()["conventions"]["score"]
    cell = type("Cell", (), {"model": "m", "dataset": "set", "task": "exact", "metrics": {"exact": 50.0}})
    assert "set exact" in results_table([cell])[0]


def test_a_new_kind_of_task_is_checked_predicted_and_scored(tmp_path, monkeypatch):
    """The toy record goes through `predict` (a test file without answers, answered by a model), `check` and the
    scorer with nothing refusing it: no code path asks whether a task is "mc" or "qa"."""
    from chat.registry import ModelRegistry
    from evaluate_fixtures import build_always_b_model
    from evaluation.check import check_submission
    from evaluation.predict import PredictConfig, load_test_set, predict

    monkeypatch.setitem(TASKS, "exact", EXACT)
    rows = [{"id": "a", "input": "哪个字母？", "output": "B", "source": "s1"},
            {"id": "b", "input": "2+2", "output": "4", "source": "s2"}]
    ref = jsonl(tmp_path / "ref.jsonl", rows)
    test = jsonl(tmp_path / "test.jsonl", [{k: v for k, v in r.items() if k != "output"} for r in rows])
    assert load_test_set(test, "exact").task == "exact"
    registry = ModelRegistry(str(build_always_b_model(tmp_path / "always-b")), tmp_path / "data")
    # A model answers "B" to everything; a free-text task is generated (no letters, no likelihood).
    [result] = predict(registry, PredictConfig(data=str(test), out=str(tmp_path / "sub.jsonl"), task="exact"))
    assert [json.loads(line)["output"] for line in Path(result.out).read_text().splitlines()] == ["B", "B"]
    meta = json.loads(Path(result.meta).read_text())
    assert meta["method"] == "generate" and meta["mc_output"] is None and meta["data"]["task"] == "exact"
    assert meta["decoding"]["max_new_tokens"] == PredictConfig(data="", out="").max_new_tokens
    checked = check_submission(test, result.out, task="exact")
    assert checked.task == "exact" and checked.exit_status == 0 and checked.problems == []
    report = score_submission(ref, result.out, task="exact")
    assert report.metrics == {"exact": 50.0} and "extractor" not in report.to_dict()["conventions"]


# ---------------------------------------------------------------------------------------------------------------
# One reader


def test_training_and_evaluation_read_one_file_alike(tmp_path):
    rows = [{"input": "头痛怎么办", "output": "休息"}, {"input": "发烧", "output": "多喝水"}]
    for name, text in [("d.jsonl", "\ufeff" + "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows)),
                       ("d.json", json.dumps(rows, ensure_ascii=False, indent=1)),
                       ("d.csv", "input,output\n头痛怎么办,休息\n\n发烧,多喝水\n"),
                       ("d.tsv", "input\toutput\n头痛怎么办\t休息\n发烧\t多喝水\n")]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        records = [r for _, r in read_records(path)]
        assert records == rows, name
        assert [r.data for r in read_rows(path).rows] == rows, name
        assert [c.messages[1].content for c in load_data(path).conversations] == ["休息", "多喝水"], name


def test_a_gbk_line_is_named_the_same_way_by_both(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"input": "a", "output": "b"}\n' + '{"input": "头痛", "output": "休息"}\n'.encode("gbk"))
    (line, err), = [(n, r) for n, r in read_records(path) if not isinstance(r, dict)]
    assert line == 2 and err.kind == "encoding" and "GBK/GB18030" in err.reason
    rejected = load_data(path).rejected
    assert [(r.line, r.kind) for r in rejected] == [(2, "encoding")] and rejected[0].reason == err.reason


def test_table_rows_report_extra_cells_and_missing_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("input,output\na,b,c\nd\n", encoding="utf-8")
    records = list(read_records(path))
    assert records[0][0] == 2 and records[0][1].kind == "bad_csv"
    assert records[1] == (3, {"input": "d", "output": None})  # a cell the row does not reach is missing
    with pytest.raises(Exception, match=r"d.csv:1: column_map\['output'\]: no column named 'answer'"):
        list(read_records(path, columns={"output": "answer"}))


# ---------------------------------------------------------------------------------------------------------------
# One atomic write


def test_atomic_write_leaves_no_temp_and_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "report.json"
    write_text(target, "one")
    assert target.read_text() == "one" and oct(target.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(TypeError):
        write_bytes(target, None)  # fails while writing the temp file: it goes, the old content stays
    assert target.read_text() == "one" and [p.name for p in target.parent.iterdir()] == ["report.json"]
    write_text(target, "secret", mode=None)
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    copy_file(target, tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_text() == "secret" and len(list(tmp_path.iterdir())) == 2


# ---------------------------------------------------------------------------------------------------------------
# One problem type, rendered in the page's language


def test_problems_render_in_the_pages_language():
    unknown = Problem(4, "q9", "unknown_id", "id 'q9' is not in the reference", fix="remove this line",
                      field="id", params={"id": "q9"})
    assert problem_text(unknown, "en") == "id 'q9' is not in the reference" and fix_text(unknown, "en") == \
        "remove this line"
    assert problem_text(unknown, "zh") == "id “q9” 不在参考答案中。" and fix_text(unknown, "zh") == "删除这一行或改正其 id。"
    bad_field = Problem(2, None, "bad_output", "field 'output' must be a string, got int 5", field="output")
    assert problem_text(bad_field, "zh").startswith("字段“output”有误：")
    other = Problem(1, None, "something_new", "an English message")
    assert problem_text(other, "zh") == "an English message"  # no sentence for the code: nothing hidden
    assert problem_line(unknown, "zh", "/srv/cache/abc/pred.jsonl") == "pred.jsonl 第 4 行：id “q9” 不在参考答案中。"
    assert problem_line(unknown, "en", "/srv/cache/abc/pred.jsonl").startswith("pred.jsonl:4: ")


def test_score_problems_carry_code_field_and_params(tmp_path):
    ref = DATA / "mc_sample.jsonl"
    report = score_submission(ref, DATA / "mc_sample_predictions.jsonl")
    by_kind = {p.kind: p for p in report.problems}
    assert by_kind["unknown_id"].params["id"] and by_kind["unknown_id"].field == "id"
    assert "first" in by_kind["duplicate_id"].params and "ref_line" in by_kind["missing_prediction"].params
    assert all("不" in problem_text(by_kind[k], "zh") or "缺少" in problem_text(by_kind[k], "zh")
               for k in ("unknown_id", "missing_prediction"))


def test_users_file_errors_are_problems(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  alice: {role: wizard, password: x}\n", encoding="utf-8")
    with pytest.raises(UsersError, match="field 'role'") as caught:
        read_users_file(path)
    problem = caught.value.problem
    assert (problem.kind, problem.field, problem.params["user"]) == ("unknown_role", "role", "alice")
    path.write_text("users:\n  alice: [\n", encoding="utf-8")
    with pytest.raises(UsersError) as caught:
        read_users_file(path)
    assert caught.value.problem.kind == "bad_yaml" and caught.value.problem.line == 3


def test_rejected_training_rows_are_problems(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "a", "output": "b"},
                                        {"instruction": "x", "output": 5}])
    rejected = load_data(path).rejected
    assert all(isinstance(r, Problem) for r in rejected)
    assert [(r.line, r.kind, r.field) for r in rejected] == [(2, "duplicate_row", ""), (3, "bad_field", "output")]
    assert rejected[0].params == {"first": 1} and str(rejected[1]).startswith(f"{path}:3: field 'output': ")
    assert replace(rejected[1], line=9).line == 9


def test_detection_reads_the_records(tmp_path):
    assert tasks.detect_task([Row(1, {"input": "q", "output": "a"})]) == "qa"
    assert tasks.detect_task([Row(1, {"question": "q", "options": {"A": "x", "B": "y"}, "answer": "A"})]) == "mc"
    # A test file's rows have no answer: options inline in the question are enough there, not in a labelled file.
    inline = [Row(1, {"input": "q\nA. x\nB. y"})]
    assert tasks.detect_task(inline, labelled=False) == "mc" and tasks.detect_task(inline) == "qa"


def test_chinese_score_page_shows_chinese_problems(tmp_path):
    """The score tab's handler on a Chinese page: the problem table speaks Chinese, lines and ids kept."""
    from ui.context import AppContext
    from ui.score_tab import score
    from ui.strings import t

    ctx = AppContext(model="demo", lang="zh", data_dir=tmp_path)
    summary, _, problems, items, _ = score("mc_sample", None, None, "auto", "", ctx)
    # The Chinese page's table headers are Chinese too (ui/polish.localize_frame); read the columns by their field.
    fields = {t(f"col.{c}", "zh"): c for c in ("kind", "message", "fix", *MULTIPLE_CHOICE.item_columns)}
    problems, items = problems.rename(columns=fields), items.rename(columns=fields)
    messages = dict(zip(problems["kind"], problems["message"]))
    assert messages["unknown_id"].startswith("id “") and messages["unknown_id"].endswith("不在参考答案中。")
    assert messages["missing_prediction"].startswith("缺少对参考答案第")
    assert problems["fix"][problems["kind"] == "unknown_id"].iloc[0] == "删除这一行或改正其 id。"
    assert list(items.columns) == list(MULTIPLE_CHOICE.item_columns)


def test_an_item_is_asked_through_its_task_record():
    """The prompt and a worked example's answer come from the item's task record, never from its class."""
    from evaluation.prompts import PromptConfig, build_messages

    loud = replace(EXACT, user_text=lambda item, config: item.input.upper(), reference_text=lambda i: f"<{i.output}>")
    shot = parse_qa_row(Row(1, {"input": "ab", "output": "c"}))
    item = parse_qa_row(Row(2, {"input": "de", "output": "f"}))
    assert build_messages(loud, item, PromptConfig(system=""), [shot]) == [
        {"role": "user", "content": "AB"}, {"role": "assistant", "content": "<c>"}, {"role": "user", "content": "DE"}]
    # The built-in records ask as they always did: the default template for free-form, the exam template for
    # multiple choice (single or multiple answer), and a worked example answers with its key.
    assert build_messages(FREE_FORM, item, PromptConfig(system=""), [shot])[1:] == [
        {"role": "assistant", "content": "c"}, {"role": "user", "content": "de"}]
    mc = MULTIPLE_CHOICE.parse_row(Row(3, {"question": "Q?", "options": {"A": "x", "B": "y"}, "answer": "AB"}))
    asked = build_messages(MULTIPLE_CHOICE, mc, PromptConfig(), [mc])
    assert asked[0]["role"] == "system" and asked[2] == {"role": "assistant", "content": "AB"}
    assert asked[3]["content"] == ("以下是一道医学多项选择题（正确答案不止一个），请选出正确答案。"
                                   "\n\nQ?\nA. x\nB. y\n\n请直接回答正确选项的字母。")
