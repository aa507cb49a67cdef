"""Reading evaluation files: formats, encodings, and a message naming file, line and field for each bad input."""

import json

import pytest

from evaluation.data import DataFileError, read_rows
from evaluation.tasks import detect_task, load_dataset


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def jsonl(*rows):
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


MC_ROW = {"id": "q1", "question": "治疗室上性心动过速首选", "options": {"A": "胺碘酮", "B": "腺苷"}, "answer": "B"}


def test_utf8_bom_and_crlf_are_read(tmp_path):
    path = write(tmp_path, "ref.jsonl", "\ufeff" + jsonl(MC_ROW, {**MC_ROW, "id": "q2"}).replace("\n", "\r\n"))
    dataset = load_dataset(path)
    assert dataset.task == "mc" and not dataset.problems
    assert [i.line for i in dataset.items] == [1, 2]


def test_gbk_file_names_encoding_and_line(tmp_path):
    path = write(tmp_path, "ref.jsonl", '{"input": "ok", "output": "ok"}\n' + jsonl(MC_ROW), encoding="gbk")
    with pytest.raises(DataFileError) as err:
        read_rows(path)
    message = str(err.value)
    assert str(path) in message and ":2:" in message and "GBK" in message
    assert err.value.problems[0].kind == "encoding" and "UTF-8" in err.value.problems[0].fix


def test_broken_line_is_reported_not_skipped(tmp_path):
    path = write(tmp_path, "ref.jsonl", jsonl(MC_ROW) + '{"id": "q2", "question": "x"\n' + jsonl({**MC_ROW, "id": "q3"}))
    dataset = load_dataset(path)
    assert [p.line for p in dataset.problems] == [2] and dataset.problems[0].kind == "bad_json"
    assert [i.id for i in dataset.items] == ["q1", "q3"]


@pytest.mark.parametrize("row, field, words", [
    ({"id": "q1", "options": {"A": "a", "B": "b"}, "answer": "A"}, "question", "missing field"),
    ({"id": "q1", "question": "q", "options": {"A": "a", "B": "b"}, "answer": 1}, "answer", "must be a string"),
    ({"id": "q1", "question": "q", "options": {"A": "a", "B": "b"}, "answer": "C"}, "answer", "does not have"),
    ({"id": "q1", "question": "q", "options": {"A": "a", "B": "b"}, "answer": "B?"}, "answer", "option letters"),
    ({"id": "q1", "question": "q", "options": "no options here", "answer": "A"}, "options", "cannot read"),
    ({"id": "q1", "question": "q", "options": {"A": 3, "B": "b"}, "answer": "A"}, "options", "letters A–F"),
])
def test_bad_mc_rows_name_line_and_field(tmp_path, row, field, words):
    path = write(tmp_path, "ref.jsonl", jsonl(MC_ROW, row))
    problem, = load_dataset(path, "mc").problems
    assert problem.line == 2 and problem.id == "q1" and problem.kind == f"bad_{field}"
    assert f"'{field}'" in problem.message and words in problem.message


@pytest.mark.parametrize("row, field", [
    ({"input": "头痛怎么办"}, "output"),
    ({"input": 5, "output": "多休息"}, "input"),
    ({"question": "头痛怎么办", "answer": ["多休息"]}, "answer"),
])
def test_bad_qa_rows_name_line_and_field(tmp_path, row, field):
    path = write(tmp_path, "ref.jsonl", jsonl({"input": "q", "output": "a"}, row))
    problem, = load_dataset(path, "qa").problems
    assert problem.line == 2 and f"'{field}'" in problem.message


@pytest.mark.parametrize("text, options", [
    ("哪项正确\nA. 甲\nB. 乙\nC. 丙", {"A": "甲", "B": "乙", "C": "丙"}),
    ("哪项正确\nA：甲\nB：乙", {"A": "甲", "B": "乙"}),
    ("哪项正确\nA、甲\nB、乙", {"A": "甲", "B": "乙"}),
    ("哪项正确\n(A) 甲\n(B) 乙", {"A": "甲", "B": "乙"}),
    ("哪项正确\nＡ．甲\nＢ．乙", {"A": "甲", "B": "乙"}),
    ("CT 示肺部阴影，哪项正确\nA. 甲\nB. 乙\nD. 丁", {"A": "甲", "B": "乙", "D": "丁"}),  # a withdrawn option C
    ("哪些正确\nA. 1\nB. 2\nC. 3\nD. 4\nE. 5\nF. 6", dict(zip("ABCDEF", "123456"))),
])
def test_competition_style_options(tmp_path, text, options):
    path = write(tmp_path, "ref.jsonl", jsonl({"input": text, "output": "A"}))
    item, = load_dataset(path).items
    assert item.options == options and item.answer == "A" and item.question.endswith("正确")


def test_option_formats_and_multi_answers(tmp_path):
    rows = [
        {**MC_ROW, "id": "dict"},
        {**MC_ROW, "id": "list", "options": ["胺碘酮", "腺苷"]},
        {**MC_ROW, "id": "cmexam", "options": "A 胺碘酮\\nB 腺苷", "answer": "b"},
        {**MC_ROW, "id": "multi", "options": dict(zip("ABCDEF", "123456")), "answer": "F,B、D"},
    ]
    items = load_dataset(write(tmp_path, "ref.jsonl", jsonl(*rows))).items
    assert [i.options for i in items[:3]] == [{"A": "胺碘酮", "B": "腺苷"}] * 3
    assert [i.answer for i in items] == ["B", "B", "B", "BDF"]


def test_free_form_field_variants(tmp_path):
    rows = [{"input": "头痛", "output": "休息"}, {"instruction": "回答问题", "input": "头痛", "output": "休息"},
            {"question": "头痛", "answer": "休息"}, {"instruction": "头痛", "output": "休息"}]
    items = load_dataset(write(tmp_path, "qa.jsonl", jsonl(*rows))).items
    assert [i.input for i in items] == ["头痛", "回答问题\n头痛", "头痛", "头痛"]
    assert {i.output for i in items} == {"休息"}


def test_json_array_lines_point_at_elements(tmp_path):
    text = '[\n  {"input": "a", "output": "b"},\n  {"input": "c"},\n  {"input": "d", "output": "e"}\n]\n'
    dataset = load_dataset(write(tmp_path, "qa.json", text), "qa")
    assert [i.line for i in dataset.items] == [2, 4] and dataset.problems[0].line == 3


def test_csv_rows_with_line_numbers(tmp_path):
    text = 'input,output\n"头痛，发热",多喝水\n"咳嗽",止咳\n'
    dataset = load_dataset(write(tmp_path, "qa.csv", text))
    assert [(i.input, i.line) for i in dataset.items] == [("头痛，发热", 2), ("咳嗽", 3)]


def test_duplicate_reference_ids(tmp_path):
    dataset = load_dataset(write(tmp_path, "ref.jsonl", jsonl(MC_ROW, MC_ROW)))
    problem, = dataset.problems
    assert problem.kind == "duplicate_id" and problem.line == 2 and "line 1" in problem.message


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(DataFileError, match="empty"):
        read_rows(write(tmp_path, "empty.jsonl", "\n\n"))
    with pytest.raises(DataFileError, match="not found"):
        read_rows(tmp_path / "nope.jsonl")


def test_competition_style_equals_schema_on_public_sets(shared_public):
    for name in ["cmexam/cmexam_mc", "cmmlu_medical/cmmlu_medical_mc", "medqa_mainland/medqa_mainland_mc"]:
        ours = load_dataset(shared_public / f"{name}.jsonl")
        competition = load_dataset(shared_public / f"{name}_competition_style.jsonl")
        assert ours.task == competition.task == "mc" and not ours.problems and not competition.problems
        assert [(i.question, i.options, i.answer) for i in ours.items] == [
            (i.question, i.options, i.answer) for i in competition.items]


def test_public_free_form_sets_read_cleanly(shared_public):
    for path in sorted(shared_public.glob("*/*_qa*.jsonl")):
        dataset = load_dataset(path)
        assert dataset.task == "qa" and not dataset.problems and dataset.items, path


def test_detect_task_by_majority():
    from evaluation.data import Row
    mc = Row(1, {"input": "哪项\nA. 甲\nB. 乙", "output": "A"})
    qa = Row(2, {"input": "头痛怎么办", "output": "多休息"})
    assert detect_task([mc, mc, qa]) == "mc" and detect_task([qa, qa, mc]) == "qa"
