"""An item longer than the model's context does not end an evaluation: it is cut from the left (or skipped), noted
on its row, counted in the report, and the other items score exactly as they do without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evaluation.prompts import PromptConfig, build_messages
from evaluation.run import EvalConfig, evaluate
from models.interface import fit_left

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = 384  # the tiny model's max positions: the sample items fit, the long one does not
QA_NEW = 12
LONG_ID = "long-1"


@pytest.fixture(scope="module")
def small_context_model(tmp_path_factory) -> Path:
    """A random 2-layer chat model (tests/chat_fixtures.py's) whose context is only CONTEXT tokens."""
    from chat_fixtures import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("small-context"), seed=3, max_positions=CONTEXT)


@pytest.fixture(scope="module")
def registry(small_context_model, tmp_path_factory):
    from models.local.registry import ModelRegistry

    return ModelRegistry(str(small_context_model), tmp_path_factory.mktemp("long-data"))


def sets(tmp: Path) -> tuple[str, str, str, str]:
    """(qa without, qa with the long item, mc without, mc with): short items from data/, one long item in the middle."""
    def write(name: str, rows: list[dict]) -> str:
        path = tmp / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    qa = [json.loads(l) for l in (ROOT / "data" / "qa_sample.jsonl").read_text("utf-8").splitlines()[:4]]
    qa = [r | {"input": r["input"][:30]} for r in qa]
    mc = [json.loads(l) for l in (ROOT / "data" / "mc_sample.jsonl").read_text("utf-8").splitlines()[:4]]
    long_qa = {"id": LONG_ID, "input": "患者自述病史：" + "反复头痛伴恶心呕吐，" * 60 + "请问最可能的诊断是什么？",
               "output": "偏头痛"}
    long_mc = {**mc[0], "id": LONG_ID, "question": "病例：" + "发热咳嗽三天，" * 60 + mc[0]["question"]}
    return (write("qa.jsonl", qa), write("qa_long.jsonl", qa[:2] + [long_qa] + qa[2:]),
            write("mc.jsonl", mc), write("mc_long.jsonl", mc[:2] + [long_mc] + mc[2:]))


def config(data: str, out: Path, **kw) -> EvalConfig:
    return EvalConfig(data=(data,), out_dir=str(out), qa_max_new_tokens=QA_NEW, batch_size=3,
                      prompt=PromptConfig(system=""), **kw)


def by_id(cell) -> dict:
    return {row["id"]: row for row in cell.rows}


def test_long_item_is_cut_from_the_left_and_the_others_score_the_same(registry, tmp_path):
    qa, qa_long, mc, mc_long = sets(tmp_path)
    for plain, with_long, field in ((qa, qa_long, "output"), (mc, mc_long, "letter_probs")):
        [alone] = evaluate(registry, config(plain, tmp_path / "alone"))
        [cell] = evaluate(registry, config(with_long, tmp_path / "with"))
        rows = by_id(cell)
        for key, row in by_id(alone).items():  # the short items answer as without the long one
            # (letter probabilities to float noise: the long item changes the batch's padded width)
            expected = pytest.approx(row[field], abs=1e-5) if field == "letter_probs" else row[field]
            assert rows[key][field] == expected and "truncated" not in rows[key]
            assert rows[key].get("prediction") == row.get("prediction")
        note = rows[LONG_ID]["truncated"]
        assert note["tokens"] > CONTEXT and note["kept"] + note["max_new_tokens"] <= CONTEXT == note["limit"]
        assert rows[LONG_ID]["output"] is not None  # it was answered, on its cut prompt
        report = json.loads((Path(cell.dir) / "report.json").read_text())
        assert report["long_items"] | {} == {"policy": "truncate", "context": CONTEXT, "truncated": 1, "skipped": 0,
                                             "truncated_ids": [LONG_ID], "skipped_ids": []}
        assert report["n"] == len(rows) == len(by_id(alone)) + 1
        saved = [json.loads(l) for l in (Path(cell.dir) / "items.jsonl").read_text().splitlines()]
        assert [r["truncated"]["tokens"] for r in saved if r["id"] == LONG_ID] == [note["tokens"]]
    # The Evaluate tab's results table counts them, in the page's language.
    from ui.evaluate_tab import results_frame
    from ui.polish import localize_frame

    frame = results_frame([cell])
    assert frame["mc_long · truncated"].tolist() == [1] and "mc_long · skipped" not in frame.columns
    assert "mc_long · 超出上下文（已从左截断）" in localize_frame(frame, "zh").columns


def test_cut_keeps_the_end_of_the_question_and_the_template(registry):
    from models.local.model import InProcessModel

    model = InProcessModel(registry)
    text = "开头" * 200 + "最后的问题是什么？"
    [fit] = model.fit_prompts([[{"role": "user", "content": text}]], 20)
    assert fit.cut and fit.kept + 20 <= CONTEXT < fit.tokens
    kept = fit.messages[-1]["content"]
    assert text.endswith(kept) and kept.endswith("最后的问题是什么？") and len(kept) < len(text)
    rendered = registry.render(fit.messages)
    assert rendered.startswith("<|im_start|>") and rendered.rstrip().endswith("assistant")  # the template is whole
    [short] = model.fit_prompts([[{"role": "user", "content": "头痛"}]], 20)
    assert not short.cut and short.tokens == short.kept


def test_fit_left_drops_example_turns_before_the_question():
    count = lambda msgs: sum(len(m["content"]) for m in msgs)  # noqa: E731 - one token a character
    shots = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q1" * 20},
             {"role": "assistant", "content": "a1"}, {"role": "user", "content": "the question"}]
    kept, tokens, n = fit_left(shots, count, 20)
    assert [m["content"] for m in kept] == ["sys", "the question"] and (tokens, n) == (57, 15)
    kept, _, n = fit_left(shots, count, 8)
    assert kept[-1]["content"] == "stion" and n == 8
    assert fit_left(shots, count, 2)[0] is None  # not even the system prompt fits: skipped


def test_skip_flag_on_the_command_line(small_context_model, tmp_path):
    _, qa_long, _, _ = sets(tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "run", "--model", str(small_context_model), "--data", qa_long,
         "--out", str(tmp_path / "out"), "--max-new-tokens", str(QA_NEW), "--system", "", "--long-items", "skip",
         "--data-dir", str(tmp_path / "runs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"1 item was longer than the context ({CONTEXT} tokens, ids {LONG_ID}): skipped" in result.stdout
    [report] = list((tmp_path / "out").glob("*/*/report.json"))
    summary = json.loads(report.read_text())["long_items"]
    assert summary["skipped"] == 1 and summary["skipped_ids"] == [LONG_ID] and summary["truncated"] == 0
    assert json.loads(report.read_text())["n"] == 4
    rows = [json.loads(l) for l in (report.parent / "items.jsonl").read_text().splitlines()]
    [skipped] = [r for r in rows if "skipped" in r]
    assert skipped["id"] == LONG_ID and skipped["skipped"]["tokens"] > CONTEXT and skipped["skipped"]["kept"] == 0
    predictions = (report.parent / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 5 and json.loads(predictions[2]) == {"id": LONG_ID, "output": ""}


class ContextServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible server with a context of REMOTE_CONTEXT characters (one token a character): model
    "sized" says so in /v1/models (`max_model_len`, as vLLM does) and counts with /tokenize; model "silent" says
    nothing and refuses a longer prompt with vLLM's HTTP 400."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._json(200, {"data": [{"id": "sized", "max_model_len": REMOTE_CONTEXT}, {"id": "silent"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        length = sum(len(m["content"]) for m in body.get("messages", []))
        if self.path == "/tokenize" and body.get("model") == "sized":
            return self._json(200, {"tokens": list(range(length))})
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": "no such path"})
        if length + body.get("max_tokens", 0) > REMOTE_CONTEXT:
            return self._json(400, {"object": "error", "message": f"This model's maximum context length is "
                                    f"{REMOTE_CONTEXT} tokens. However, you requested {length} tokens."})
        self._json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"{length}"}}]})

    def _json(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


REMOTE_CONTEXT = 300


def test_remote_model_cut_by_max_model_len_or_skipped_on_the_servers_refusal(tmp_path):
    from models.directory import ModelDirectory
    from models.remote.endpoints import parse_endpoint_flags

    server = ThreadingHTTPServer(("127.0.0.1", 0), ContextServer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        [endpoint] = parse_endpoint_flags([f"box=http://127.0.0.1:{server.server_address[1]}/v1"])
        directory = ModelDirectory(None, [endpoint])
        _, qa_long, _, _ = sets(tmp_path)
        sized, silent = evaluate(directory, config(qa_long, tmp_path / "out", models=("sized@box", "silent@box"),
                                                   concurrency=2))
    finally:
        server.shutdown()
    rows = by_id(sized)
    assert rows[LONG_ID]["truncated"]["limit"] == REMOTE_CONTEXT
    assert int(rows[LONG_ID]["output"]) + QA_NEW <= REMOTE_CONTEXT  # the server saw the cut prompt
    assert sized.report["long_items"]["truncated_ids"] == [LONG_ID]
    assert silent.report["long_items"]["skipped_ids"] == [LONG_ID] and silent.report["n"] == 4
    assert "maximum context length" in json.loads(
        [l for l in (Path(silent.dir) / "items.jsonl").read_text().splitlines() if LONG_ID in l][0]
    )["skipped"]["refused"]
    assert {k: r["output"] for k, r in by_id(silent).items()} == {k: r["output"] for k, r in rows.items()
                                                                  if k != LONG_ID}


def test_predict_answers_a_long_item_on_its_cut_prompt(registry, tmp_path):
    from evaluation.predict import PredictConfig, predict

    _, qa_long, _, _ = sets(tmp_path)
    [result] = predict(registry, PredictConfig(data=qa_long, out=str(tmp_path / "sub.jsonl"), max_new_tokens=QA_NEW,
                                               prompt=PromptConfig(system="")))
    assert result.n == 5 and result.truncated == 1
    meta = json.loads(Path(result.meta).read_text())
    assert meta["long_items"] == {"truncated": 1, "truncated_lines": [3]}  # the long item is the third line
    rows = [json.loads(l) for l in (tmp_path / "sub.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["qa-001", "qa-002", LONG_ID, "qa-003", "qa-004"]
