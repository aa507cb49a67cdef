"""Answer an unlabelled test set and write the submission in the shape of the test file.

`python -m evaluation predict [--model M] [--adapter A ...] [--endpoint URL] --data test.jsonl --out sub.jsonl`:
every row of the test file is answered (multiple choice with options inline or as a field, or free-form) and
written back with all its fields, in their order, and the answer field filled (`output` unless told otherwise), as
JSONL, a JSON array or CSV like the input. One file per model when several are given.

Every model answers through models/interface.py's `ChatModel`, as in evaluation/run.py: in process, or behind an
OpenAI-compatible endpoint (`--endpoint URL --model SERVED`, `concurrency` requests in flight). A model without
log-probabilities answers multiple choice by generation, and the meta's `scored_by` says so and why.

Resuming: answers are appended batch by batch (one fsync each) to `<stem>.progress.jsonl` beside the output, under
a key that hashes everything deciding the answers; the same command again skips what is done. Decoding is greedy
by default (deterministic) and the settings are written to `<stem>.meta.json`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from evaluation.data import DataFileError, Problem, ProblemError, Row, read_rows, row_problem
from evaluation.extract import extract_answer
from evaluation.postprocess import apply_postprocess, check_names
from evaluation.prompts import PromptConfig, build_messages
from evaluation.tasks import TASKS, detect_task, get_task
from evaluation.run import (
    EvalCancelled, EvalError, Progress, file_sha256, pick_letters, scored_by_note, work_batch_size, _slug,
    with_run_total,
)
from models.interface import ModelError
from safeio.atomic import write_text
from safeio.records import file_kind

MC_OUTPUTS = ("letters", "text", "both")
PREDICT_METHODS = ("likelihood", "generate")


@dataclass(frozen=True)
class PredictConfig:
    data: str
    out: str
    models: tuple[str | None, ...] = (None,)  # None: the in-process base; else names the model directory knows
    task: str = "auto"  # "mc", "qa" or "auto" (by the rows: options as a field or inline)
    answer_field: str = "output"
    mc_output: str = "letters"
    method: str = "likelihood"  # multiple choice; free-form always generates
    batch_size: int = 8
    mc_max_new_tokens: int = 32
    max_new_tokens: int = 256
    multi_threshold: float | None = None
    postprocess: tuple[str, ...] = ()  # free-form answers: evaluation.postprocess option names, in order
    prompt: PromptConfig = field(default_factory=PromptConfig)
    seed: int = 0
    concurrency: int = 8  # requests in flight to a remote model (in-process models batch `batch_size` rows instead)

    def __post_init__(self) -> None:
        # (setting, valid, English expectation, the same as a range any language reads: EvalConfig's "eval_setting")
        checks = [("task", self.task == "auto" or self.task in TASKS, f"auto or one of {', '.join(TASKS)}",
                   ", ".join(("auto", *TASKS))),
                  ("concurrency", 1 <= self.concurrency <= 256, "between 1 and 256", "1–256"),
                  ("mc_output", self.mc_output in MC_OUTPUTS, f"one of {', '.join(MC_OUTPUTS)}", ", ".join(MC_OUTPUTS)),
                  ("method", self.method in PREDICT_METHODS, f"one of {', '.join(PREDICT_METHODS)}",
                   ", ".join(PREDICT_METHODS)),
                  ("batch_size", self.batch_size >= 1, "at least 1", "≥ 1"),
                  ("answer_field", bool(self.answer_field.strip()), "a field name", "output, answer, …"),
                  ("multi_threshold", self.multi_threshold is None or 0 < self.multi_threshold < 1, "in (0, 1)",
                   "(0, 1)"),
                  ("models", bool(self.models), "at least one model", "≥ 1")]
        for name, ok, expected, allowed in checks:
            if not ok:
                raise EvalError(f"{name} must be {expected}, got {getattr(self, name)!r}", "eval_setting",
                                name=name, allowed=allowed, value=repr(getattr(self, name))[:40])
        check_names(self.postprocess)

    @property
    def qa_max_new_tokens(self) -> int:
        """max_new_tokens under the name EvalConfig and the free-form task record use (Task.max_new_tokens_setting)."""
        return self.max_new_tokens


@dataclass
class TestSet:
    path: str
    kind: str  # safeio.records.file_kind: "jsonl", "json_array", "csv", "tsv"
    task: str
    rows: list[Row]
    items: list  # MCItem / QAItem, one per row, answer fields empty
    columns: list[str]  # a table's header, in order (the fields of the first row for JSON)


# ---------------------------------------------------------------------------------------------------------------
# Reading a test file: the answer fields may be absent


def load_test_set(path: str | Path, task: str = "auto") -> TestSet:
    """Every row of a test file as an item without an answer; refused whole (DataFileError, every problem named
    by line and field) when a row cannot be read, since a submission must answer every line."""
    read = read_rows(path)
    problems: list[Problem] = list(read.problems)
    task = detect_task(read.rows, labelled=False) if task == "auto" else task
    parse = get_task(task).parse_row
    items = []
    for row in read.rows:
        try:
            items.append(parse(row, labelled=False))
        except ProblemError as err:
            problems.append(row_problem(row, err))
    seen: dict[str, int] = {}  # a submission is aligned by id: two lines with one id cannot both be answered
    for item in (i for i in items if i.id is not None):
        if item.id in seen:
            problems.append(Problem(item.line, item.id, "duplicate_id", f"id {item.id!r} already used at line "
                                    f"{seen[item.id]}", fix="give every item a unique id", field="id",
                                    params={"id": item.id, "first": seen[item.id]}))
        else:
            seen[item.id] = item.line
    if problems:
        raise DataFileError(path, problems)
    columns = list(dict.fromkeys(k for row in read.rows for k in row.data))
    return TestSet(str(path), file_kind(path), task, read.rows, items, columns)


# ---------------------------------------------------------------------------------------------------------------
# Writing a submission in the shape of the test file


def mc_answer_text(letters: str, options: dict[str, str], mc_output: str) -> str:
    """Letters as the competition expects them: "BD", the options' texts, or both ("B. 肌红蛋白")."""
    if not letters or mc_output == "letters":
        return letters
    if mc_output == "text":
        return "；".join(options[letter] for letter in letters)
    return "；".join(f"{letter}. {options[letter]}" for letter in letters)


def render_submission(test: TestSet, answers: list[str], answer_field: str) -> str:
    """The test file's rows, every field kept in order, the answer field filled in place (or added last)."""
    rows = []
    for row, answer in zip(test.rows, answers):
        data = dict(row.data)
        data[answer_field] = answer
        rows.append(data)
    if test.kind in ("csv", "tsv"):
        buffer = io.StringIO()
        columns = test.columns + ([answer_field] if answer_field not in test.columns else [])
        writer = csv.DictWriter(buffer, fieldnames=columns, delimiter="," if test.kind == "csv" else "\t",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    if test.kind == "json_array":
        return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def output_paths(out: str | Path, names: list[str]) -> list[Path]:
    """`out` itself for one model; `<stem>-<model><suffix>` for each of several."""
    out = Path(out)
    if len(names) == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{_slug(name)}{out.suffix}") for name in names]


def sidecar(out: Path, what: str) -> Path:
    return out.with_name(f"{out.stem}.{what}")


# ---------------------------------------------------------------------------------------------------------------
# Answering


@dataclass
class PredictResult:
    model: str
    out: str
    meta: str
    n: int
    answered_now: int
    unparsed: int  # multiple choice by generation: replies with no readable letter (written empty)
    seconds: float
    truncated: int = 0  # prompts longer than the model's context, cut from the left


def predict_settings(config: PredictConfig, identity: dict, test: TestSet, can_score: bool = True) -> dict:
    """Everything that decides the written answers (not the batch size); its hash keys the progress log.
    `can_score`: the model gives log-probabilities (else multiple choice is answered by generation, as in run)."""
    from models.settings import GenerationSettings

    task = get_task(test.task)
    method = config.method if config.method in task.methods and can_score else "generate"
    max_new = task.generation_max_tokens(config)
    return {**identity,
            "data": {"path": test.path, "sha256": file_sha256(test.path), "task": test.task, "format": test.kind,
                     "n_items": len(test.items)},
            "method": method, "multi_threshold": config.multi_threshold if method == "likelihood" else None,
            "answer_field": config.answer_field, "mc_output": config.mc_output if task.answers_are_letters else None,
            "postprocess": list(config.postprocess) if task.postprocess_applies else [],
            "prompt": config.prompt.to_dict(),
            "decoding": None if method == "likelihood" else GenerationSettings(max_new_tokens=max_new,
                                                                               seed=config.seed).to_dict(),
            "seed": config.seed}


def answer_batch(model, items: list, prompts: list, settings: dict, concurrency: int) -> list[dict]:
    """One batch answered through the ChatModel: {"line", "letters" | "answer", "raw"} each (raw: what the model
    said, before reading/cleaning)."""
    from models.settings import GenerationSettings

    if settings["method"] == "likelihood":
        scores = model.score_options(prompts, [list(item.options) for item in items], concurrency)
        return [{"line": item.line, "letters": pick_letters(list(item.options), probs, settings["multi_threshold"]),
                 "raw": None} for item, probs in zip(items, scores)]
    texts = [t.strip() for t in model.generate(prompts, GenerationSettings(**settings["decoding"]), concurrency)]
    task = get_task(settings["data"]["task"])
    if task.answers_are_letters:
        return [{"line": item.line, "letters": extract_answer(text, item.options) or "", "raw": text}
                for item, text in zip(items, texts)]
    return [{"line": item.line, "answer": apply_postprocess(text, settings["postprocess"], task.item_input(item)),
             "raw": text} for item, text in zip(items, texts)]


def read_progress(path: Path, key: str) -> dict[int, dict]:
    """Answers already written under this key, by line; a log under another key (other settings) is not used.
    A half-written last line (a killed run) is dropped: that batch is answered again."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").split("\n")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        return {}
    if header.get("key") != key:
        return {}
    done, good = {}, [lines[0]]
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[entry["line"]] = entry
        good.append(line)
    if len(good) < len([ln for ln in lines if ln]):  # else the next batch would be appended to the broken line
        path.write_text("".join(g + "\n" for g in good), encoding="utf-8")
    return done


def append_progress(path: Path, key: str, entries: list[dict], fresh: bool) -> None:
    with open(path, "w" if fresh else "a", encoding="utf-8") as handle:
        if fresh:
            handle.write(json.dumps({"key": key}) + "\n")
        handle.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
        handle.flush()
        os.fsync(handle.fileno())


def predict(models, config: PredictConfig, progress: Callable[[Progress], None] | None = None,
            stop: threading.Event | None = None, batch_call: Callable | None = None) -> list[PredictResult]:
    """Answer the test set with each model in turn and write one submission per model. `models` names models:
    anything with `model_for(name)` (the in-process `ModelRegistry`, or a `models.directory.ModelDirectory` that
    adds endpoints' models), as for evaluation.run.evaluate; `batch_call` as there (a ZeroGPU Space's GPU call)."""
    test = load_test_set(config.data, config.task)
    if not test.items:
        raise EvalError(f"{config.data}: no items to answer", "predict_no_items", name=Path(config.data).name)
    try:  # fail before any work on an unknown name
        chosen = [models.model_for(m) for m in config.models]
        identities = [model.identity() for model in chosen]
    except ModelError as exc:
        raise EvalError(str(exc)) from exc
    outs = output_paths(config.out, [i["model"] for i in identities])
    for out in outs:
        if Path(out).resolve() == Path(config.data).resolve():
            raise EvalError(f"--out {out} is the test file itself; give another name", "predict_out_is_data",
                            name=Path(out).name)
    progress = with_run_total(progress, len(chosen) * len(test.items))
    return [predict_one(model, config, identity, test, out, progress, stop, batch_call)
            for model, identity, out in zip(chosen, identities, outs)]


def predict_one(model, config: PredictConfig, identity: dict, test: TestSet, out: Path,
                progress=None, stop=None, batch_call: Callable | None = None) -> PredictResult:
    """One model's submission: what is not in the progress log yet, batch by batch, then the file and its meta."""
    import torch

    # Probed only where it matters (a remote model answers with a request); without log-probabilities multiple
    # choice is answered by generation, and the meta says why.
    likelihood = config.method == "likelihood" and get_task(test.task).can_score_by_likelihood
    scoring = model.scoring() if likelihood else None
    settings = predict_settings(config, identity, test, can_score=scoring is None or scoring.way is not None)
    key = hashlib.sha256(json.dumps({k: v for k, v in settings.items() if k != "data"} | {
        "data": {k: v for k, v in settings["data"].items() if k != "path"}}, sort_keys=True).encode()).hexdigest()[:16]
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = sidecar(out, "progress.jsonl")
    done = read_progress(log_path, key)
    fresh = not done
    pending = [item for item in test.items if item.line not in done]
    prompts = {i.line: build_messages(get_task(test.task), i, config.prompt) for i in pending}
    cut = fit_to_context(model, prompts, settings)
    lengths = dict(zip(prompts, model.prompt_lengths(list(prompts.values())))) if pending else {}
    # Longest first: rows of one batch pad little, and the memory peak comes in the first batch.
    pending.sort(key=lambda i: (-lengths[i.line], i.line))
    size = work_batch_size(model, config.batch_size, config.concurrency)
    torch.manual_seed(config.seed)
    started, answered, total = time.perf_counter(), 0, len(test.items)
    _progress(progress, identity["model"], test, total - len(pending), 0, started)
    for start in range(0, len(pending), size):
        if stop is not None and stop.is_set():
            raise EvalCancelled(f"stopped: {total - len(pending) + answered} of {total} answered for "
                                f"{identity['model']}; run again with the same settings to resume")
        batch = pending[start:start + size]
        try:
            args = (batch, [prompts[i.line] for i in batch], settings, config.concurrency)
            entries = answer_batch(model, *args) if batch_call is None else batch_call(model, answer_batch, *args)
        except ModelError as exc:  # a remote model that failed (after retries): what is done stays in the log
            raise ModelError(f"{identity['model']} on {test.path}: {exc}; answered batches are saved, run again "
                             "to resume") from exc
        entries = [e | ({"truncated": cut[e["line"]]} if e["line"] in cut else {}) for e in entries]
        append_progress(log_path, key, entries, fresh)
        fresh = False
        done.update((e["line"], e) for e in entries)
        answered += len(batch)
        _progress(progress, identity["model"], test, total - len(pending) + answered, answered, started)
    answers, unparsed = collect_answers(test, done, config.mc_output)
    truncated = sorted(line for line, entry in done.items() if "truncated" in entry)
    write_text(out, render_submission(test, answers, config.answer_field))
    elapsed = time.perf_counter() - started
    meta = sidecar(out, "meta.json")
    write_text(meta, json.dumps({**settings, "key": key, "out": str(out), "unparsed": unparsed,
                                 "scored_by": scored_by_note(scoring, settings["method"]),
                                 "long_items": {"truncated": len(truncated), "truncated_lines": truncated},
                                 "timing": {"seconds_this_run": round(elapsed, 3), "items_this_run": answered,
                                            "batch_size": config.batch_size, "concurrency": config.concurrency},
                                 "progress_log": log_path.name}, ensure_ascii=False, indent=2))
    return PredictResult(identity["model"], str(out), str(meta), total, answered, unparsed, elapsed,
                         len(truncated))


def fit_to_context(model, prompts: dict, settings: dict) -> dict[int, dict]:
    """Prompts longer than the model's context, cut from the left in place (models.interface.fit_left: the end of
    the question and the answer cue stay). A submission answers every line, so nothing is skipped here. Returns
    line -> the token counts of each prompt cut (kept in the progress log, counted in the meta)."""
    if not prompts:
        return {}
    max_new = settings["decoding"]["max_new_tokens"] if settings["decoding"] else 1  # likelihood: one position
    cut = {}
    for line, fit in zip(list(prompts), model.fit_prompts(list(prompts.values()), max_new)):
        if not fit.cut:
            continue
        if fit.messages is None:
            raise EvalError(f"line {line}: even an empty question does not fit the model's context of {fit.limit} "
                            f"tokens with {max_new} new tokens; lower --max-new-tokens", "predict_no_fit",
                            line=line, limit=fit.limit, max_new=max_new)
        prompts[line] = fit.messages
        cut[line] = {"tokens": fit.tokens, "kept": fit.kept, "limit": fit.limit}
    return cut


def collect_answers(test: TestSet, done: dict[int, dict], mc_output: str) -> tuple[list[str], int]:
    """The answers in the test file's order, and how many multiple-choice replies had no readable letter."""
    answers, unparsed, letters = [], 0, get_task(test.task).answers_are_letters
    for item in test.items:
        entry = done[item.line]
        if letters:
            unparsed += not entry["letters"]
            answers.append(mc_answer_text(entry["letters"], item.options, mc_output))
        else:
            answers.append(entry["answer"])
    return answers, unparsed


def _progress(progress, model: str, test: TestSet, done: int, done_now: int, started: float) -> None:
    if progress is None:
        return
    elapsed = time.perf_counter() - started
    rate = done_now / elapsed if done_now and elapsed > 0 else 0.0
    total = len(test.items)
    progress(Progress(model, Path(test.path).stem, done, total, rate, (total - done) / rate if rate else None))
