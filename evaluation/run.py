"""Model evaluation runs: (models x data sets), multiple choice by likelihood or by generation, free-form by generation.

Multiple choice, two methods:
* "likelihood": one batched forward pass per batch of questions; the prediction is the option letter whose first
  token scores highest as the next token after the prompt (softmax over the item's own letters only). It picks ONE
  letter, so a multi-answer item ("BD") is always wrong unless `multi_threshold` is set: then every letter whose
  probability (among the item's letters) reaches the threshold is predicted, the top letter always included.
* "generate": greedy generation, then `evaluation.extract.extract_answer`; a reply it cannot read is "unparsed",
  wrong, and stays in the denominator. Multi-answer items are right when the extracted letter set equals the key.
Free-form: batched greedy generation (left padding, batches of similar length), scored with `qa_item_scores`.

Every model answers through models/interface.py's `ChatModel`, wherever it runs: in process (batches of
`batch_size` rows) or behind an OpenAI-compatible endpoint (`concurrency` requests in flight). A model that cannot
give log-probabilities (`scoring().way` None) takes the "generate" method for multiple choice, and the report says
so and why (`scored_by`). `models` is what names models: anything with `model_for(name)` (the in-process
`ModelRegistry`, or a `models.directory.ModelDirectory` that adds endpoints' models).

Each (model, set) cell writes into `<out>/<model>/<set>-<key>/`, where key hashes everything that decides the
answers (model and adapter weights, data file, task, method, prompt, shots, decoding, seed): `items.jsonl` grows
batch by batch, so an interrupted run loses at most one batch, and the same command again skips what is done.
`predictions.jsonl` (the competition's submission format) and `report.json` are written when the cell completes.

An item whose prompt and answer do not fit the model's context (`ChatModel.fit_prompts`) does not end the run: by
default (`long_items="truncate"`) its prompt is cut from the left (earliest example turns, then the start of its
text; the chat template, the question's end and the answer cue stay), and with "skip" it is left out of the scores;
either way its row in items.jsonl says so (`truncated` / `skipped`, with the token counts) and report.json counts
them and lists their ids (`long_items`). A server that does not say its context refuses such a prompt itself: that
item is skipped and recorded the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from evaluation.data import DataFileError, Item, MCItem, QAItem
from evaluation.prompts import PromptConfig, build_messages
from evaluation.tasks import MULTIPLE_CHOICE, TASKS, Task, get_task, load_dataset, score_mc_letters
from models.interface import IN_PROCESS, ModelError
from models.settings import GenerationSettings
from safeio.atomic import write_text

METHODS = ("likelihood", "generate")
LONG_ITEMS = ("truncate", "skip")  # what to do with an item longer than the model's context
LIKELIHOOD_NOTE = MULTIPLE_CHOICE.method_notes["likelihood"]
GENERATE_NOTE = MULTIPLE_CHOICE.method_notes["generate"]


class EvalError(ValueError):
    """An evaluation cannot start or go on; the message names the file, line, field or setting at fault. `code`
    (a sentence of safeio.problems.MESSAGES) and `params`, where given, let the page say it in its language."""

    def __init__(self, message: str, code: str = "", **params):
        super().__init__(message)
        self.code, self.params = code, params

    def __reduce__(self):  # crosses the worker process boundary with its code
        return _eval_error, (str(self), self.code, self.params)


def _eval_error(message, code, params):
    return EvalError(message, code, **params)


class EvalCancelled(Exception):
    """The run was stopped between batches; everything finished so far is on disk and a re-run resumes."""


@dataclass(frozen=True)
class EvalConfig:
    data: tuple[str, ...]
    out_dir: str
    models: tuple[str | None, ...] = (None,)  # None: the base model; else names known to the model directory
    method: str = "likelihood"
    batch_size: int = 8
    limit: int | None = None  # the first N items of each set
    shots: int = 0
    shots_data: tuple[str, ...] = ()  # files to take k-shot examples from, matched to each set's task
    mc_max_new_tokens: int = 32
    qa_max_new_tokens: int = 256
    multi_threshold: float | None = None
    circular: bool = False  # likelihood only: also ask each item with its options rotated (evaluation/circular.py)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    seed: int = 0
    concurrency: int = 8  # requests in flight to a remote model (in-process models batch `batch_size` rows instead)
    long_items: str = "truncate"  # an item longer than the context: cut from the left, or "skip" (and count) it

    def __post_init__(self) -> None:
        # (setting, valid, English expectation, the same as a range any language reads)
        checks = [("method", self.method in METHODS, f"one of {', '.join(METHODS)}", ", ".join(METHODS)),
                  ("batch_size", self.batch_size >= 1, "at least 1", "≥ 1"),
                  ("concurrency", 1 <= self.concurrency <= 256, "between 1 and 256", "1–256"),
                  ("long_items", self.long_items in LONG_ITEMS, f"one of {', '.join(LONG_ITEMS)}",
                   ", ".join(LONG_ITEMS)),
                  ("limit", self.limit is None or self.limit >= 1, "at least 1 (or unset)", "≥ 1"),
                  ("shots", 0 <= self.shots <= 20, "between 0 and 20", "0–20"),
                  ("multi_threshold", self.multi_threshold is None or 0 < self.multi_threshold < 1, "in (0, 1)",
                   "(0, 1)"),
                  ("data", bool(self.data), "at least one file", "≥ 1"),
                  ("models", bool(self.models), "at least one model", "≥ 1")]
        for name, ok, expected, allowed in checks:
            if not ok:
                raise EvalError(f"{name} must be {expected}, got {getattr(self, name)!r}", "eval_setting",
                                name=name, allowed=allowed, value=repr(getattr(self, name))[:40])
        if self.shots and not self.shots_data:
            raise EvalError("shots > 0 needs a file of examples (shots_data / --shots-data), kept apart from the "
                            "evaluated sets so that no question is shown with its own answer", "eval_shots_file")


@dataclass
class EvalSet:
    name: str
    path: str
    task: str
    items: list
    sha256: str


@dataclass
class Progress:
    model: str
    dataset: str
    done: int
    total: int
    items_per_s: float
    eta_s: float | None
    run_total: int = 0  # items in the whole run (every model and set): a job's progress bar is the run's


def with_run_total(progress: Callable[[Progress], None] | None, run_total: int):
    """The progress callback with the whole run's size on each cell's report (its caller loaded the data already)."""
    if progress is None:
        return None
    return lambda p: progress(replace(p, run_total=run_total))


@dataclass
class CellResult:
    model: str
    dataset: str
    task: str
    metrics: dict[str, float]
    report: dict
    dir: str
    rows: list[dict] = field(repr=False, default_factory=list)

    @property
    def files(self) -> list[str]:
        return [str(Path(self.dir) / name) for name in ("predictions.jsonl", "items.jsonl", "report.json")]


# ---------------------------------------------------------------------------------------------------------------
# Data


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_set(path: str | Path, name: str | None = None) -> EvalSet:
    """A validation set; refused whole when any row has a problem (a partial score would mislead)."""
    dataset = load_dataset(path)  # raises DataFileError for a file that cannot be read at all
    if dataset.problems:
        raise DataFileError(path, dataset.problems)
    if not dataset.items:
        raise EvalError(f"{path}: no items to evaluate", "eval_no_items", name=Path(path).name)
    return EvalSet(name or Path(path).stem, str(path), dataset.task, dataset.items, file_sha256(path))


def load_sets(paths: Sequence[str]) -> list[EvalSet]:
    sets, seen = [], set()
    for path in paths:
        name, n = Path(path).stem, 2
        while name in seen:  # two files with one name (e.g. uploads from different folders)
            name, n = f"{Path(path).stem}-{n}", n + 1
        seen.add(name)
        sets.append(load_set(path, name))
    return sets


def load_shots(paths: Sequence[str], k: int) -> dict[str, tuple[list, str]]:
    """task -> (the first k items of the first shots file of that task, its path)."""
    shots: dict[str, tuple[list, str]] = {}
    for path in paths:
        eset = load_set(path)
        if eset.task not in shots:
            if len(eset.items) < k:
                raise EvalError(f"{path}: {k} shots asked for, but the file has only {len(eset.items)} items",
                                "eval_few_shots", name=Path(path).name, k=k, count=len(eset.items))
            shots[eset.task] = (eset.items[:k], str(path))
    return shots


def item_key(item: Item) -> str:
    return f"id:{item.id}" if item.id is not None else f"line:{item.line}"


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "model"


# ---------------------------------------------------------------------------------------------------------------
# The per-item log: append-only JSONL, one fsync per batch


class ItemLog:
    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        if path.exists():
            good = []
            for line in path.read_text(encoding="utf-8").split("\n"):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the half-written last line of a killed run: that batch is redone
                self.rows[row["key"]] = row
                good.append(line)
            path.write_text("".join(g + "\n" for g in good), encoding="utf-8")

    def append(self, rows: list[dict]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            handle.flush()
            os.fsync(handle.fileno())
        self.rows.update((r["key"], r) for r in rows)


# ---------------------------------------------------------------------------------------------------------------
# One batch each way


def pick_letters(letters: Sequence[str], probs: dict[str, float], threshold: float | None) -> str:
    """The letters answered from the options' probabilities: the top one (ties: the earlier letter), plus, with a
    threshold, every letter reaching it (multi-answer items). Evaluation and prediction read scores the same way."""
    top = max(range(len(letters)), key=lambda i: (probs[letters[i]], -i))
    chosen = {letters[top]} | ({l for l in letters if probs[l] >= threshold} if threshold else set())
    return "".join(sorted(chosen))


def mc_likelihood_rows(model, items: list[MCItem], prompts, threshold: float | None,
                       concurrency: int = 8) -> list[dict]:
    """Each item's option letters scored by the model (`ChatModel.score_options`: softmax over the item's letters)."""
    rows = []
    for item, probs in zip(items, model.score_options(prompts, [list(item.options) for item in items],
                                                               concurrency)):
        letters = list(item.options)
        prediction = pick_letters(letters, probs, threshold)
        row = run_row(MULTIPLE_CHOICE, item, prediction, score_mc_letters(item, prediction))
        rows.append(row | {"letter_probs": {l: probs[l] for l in letters}})
    return rows


def generate_rows(task: Task, model, items: list, prompts, settings, concurrency: int = 8) -> list[dict]:
    """Greedy answers, scored by the task's own scoring: the same code the scorer runs on a predictions file."""
    texts = [t.strip() for t in model.generate(prompts, settings, concurrency)]
    scores = task.score_answers(items, texts, [True] * len(texts))
    return [run_row(task, item, text, score) for item, text, score in zip(items, texts, scores)]


def run_row(task: Task, item, text: str, score: dict) -> dict:
    row = {"key": item_key(item), "line": item.line, "id": item.id, **task.item_fields(item), "output": text,
           **score}
    if task.answer_field:
        row["prediction"] = score[task.answer_field]
    return row


def mc_generate_rows(model, items: list[MCItem], prompts, settings, concurrency: int = 8) -> list[dict]:
    return generate_rows(MULTIPLE_CHOICE, model, items, prompts, settings, concurrency)


def qa_rows(model, items: list[QAItem], prompts, settings, concurrency: int = 8) -> list[dict]:
    return generate_rows(TASKS["qa"], model, items, prompts, settings, concurrency)


# ---------------------------------------------------------------------------------------------------------------
# A run


def model_identity(models, name: str | None) -> dict:
    """What the answers depend on: for an in-process model the base reference and the adapter's source and weights
    hash; for a remote one the endpoint's URL (never its key) and the served model's name."""
    try:
        return models.model_for(name).identity()
    except ModelError as exc:
        raise EvalError(str(exc)) from exc


def cell_settings(config: EvalConfig, identity: dict, eset: EvalSet, shots: dict,
                  can_score: bool = True) -> dict:
    """Everything that decides a cell's answers (not batch size, not limit); its hash names the cell's folder.
    `can_score`: the model gives log-probabilities (else multiple choice is answered by generation)."""
    task = get_task(eset.task)
    max_new = task.generation_max_tokens(config)
    # A method the task does not have (likelihood for free-form answers) falls back to the task's first one.
    method = config.method if config.method in task.methods else task.methods[0]
    if method == "likelihood" and not can_score:
        method = "generate"
    shot_items, shot_path = shots.get(eset.task, ([], None))
    return {
        **identity,
        "data": {"name": eset.name, "path": eset.path, "sha256": eset.sha256, "task": eset.task,
                 "n_items": len(eset.items)},
        "method": method,
        "multi_threshold": config.multi_threshold if method == "likelihood" else None,
        **({"circular": True} if config.circular and method == "likelihood" and task.supports_circular else {}),
        "prompt": {**config.prompt.to_dict(), "shots": len(shot_items), "shots_data": shot_path,
                   "shots_sha256": file_sha256(shot_path) if shot_path else None},
        "decoding": None if method == "likelihood" else GenerationSettings(max_new_tokens=max_new).to_dict(),
        "seed": config.seed,
        "long_items": config.long_items,
    }


def evaluate(models, config: EvalConfig, progress: Callable[[Progress], None] | None = None,
             stop: threading.Event | None = None, batch_call: Callable | None = None) -> list[CellResult]:
    """Every (model, set) cell, model by model; cells already complete on disk are read back, not recomputed.

    `batch_call(model, batch_rows, *args)`, when given, runs each batch instead of `batch_rows(model, *args)`: the
    app on a ZeroGPU Space passes one that runs an in-process model's batch in a lent GPU's worker (ui/zerogpu.py).
    """
    sets = load_sets(config.data)
    shots = load_shots(config.shots_data, config.shots) if config.shots else {}
    missing = sorted({s.task for s in sets} - set(shots)) if config.shots else []
    if missing:
        raise EvalError(f"--shots {config.shots}: no shots file for task {', '.join(missing)} "
                        "(give one --shots-data file per task: mc and/or qa)", "eval_shots_task", shots=config.shots,
                        tasks=", ".join(missing))
    try:  # fail before any work on an unknown name
        chosen = [models.model_for(m) for m in config.models]
    except ModelError as exc:
        raise EvalError(str(exc)) from exc
    run_total = len(chosen) * sum(len(cell_items(eset, config.limit)) for eset in sets)
    progress = with_run_total(progress, run_total)
    results = [evaluate_cell(model, config, model_identity(models, name), eset, shots, progress, stop, batch_call)
               for name, model in zip(config.models, chosen) for eset in sets]
    # Several users' runs share out_dir: written atomically, so no reader sees half a summary.
    write_text(Path(config.out_dir, "summary.json"), json.dumps(
        [{"model": r.model, "dataset": r.dataset, "task": r.task, "metrics": r.metrics, "dir": r.dir}
         for r in results], ensure_ascii=False, indent=2))
    return results


def cell_items(eset: EvalSet, limit: int | None) -> list:
    """The items a cell answers: the set's first `limit` (all when unset)."""
    return eset.items[:limit] if limit else eset.items


def evaluate_cell(model, config: EvalConfig, identity: dict, eset: EvalSet, shots: dict,
                  progress=None, stop=None, batch_call: Callable | None = None) -> CellResult:
    """One (model, set) cell: what is not in items.jsonl yet, batch by batch, then the report."""
    import torch

    task = get_task(eset.task)
    scoring = model.scoring() if config.method == "likelihood" and "likelihood" in task.methods \
        else None  # probed only where it matters (a remote model answers with a request)
    settings = cell_settings(config, identity, eset, shots, can_score=scoring is None or scoring.way is not None)
    # The file's hash, not its path, identifies the data: the same file from another folder or upload resumes.
    keyed = settings | {"data": {k: v for k, v in settings["data"].items() if k != "path"}}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    cell_dir = Path(config.out_dir) / _slug(identity["model"]) / f"{_slug(eset.name)}-{key}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    (cell_dir / "settings.json").write_text(json.dumps(settings, ensure_ascii=False, indent=2), encoding="utf-8")
    log = ItemLog(cell_dir / "items.jsonl")
    items = cell_items(eset, config.limit)
    pending = [item for item in items if item_key(item) not in log.rows]
    shot_items = shots.get(eset.task, ([], None))[0]
    prompts = {item_key(i): build_messages(task, i, config.prompt, shot_items) for i in pending}
    notes, skipped = fit_to_context(model, task, pending, prompts, settings, config.long_items)
    log.append(skipped)  # recorded now: a resumed run does not ask about them again
    pending = [item for item in pending if item_key(item) not in log.rows]
    lengths = model.prompt_lengths([prompts[item_key(i)] for i in pending]) if pending else []
    # Longest first, so that rows of one batch pad little and the memory peak comes in the first batch. A remote
    # model gets batches of several times `concurrency` rows, so that N requests stay in flight most of the time.
    size = work_batch_size(model, config.batch_size, config.concurrency)
    order = [i for _, i in sorted(zip((-n for n in lengths), range(len(pending))))]
    batches = [[pending[i] for i in order[s:s + size]] for s in range(0, len(order), size)]
    torch.manual_seed(config.seed)
    started, done_now = time.perf_counter(), 0
    _report_progress(progress, identity, eset, len(items) - len(pending), len(items), 0, started)
    for batch in batches:
        if stop is not None and stop.is_set():
            raise EvalCancelled(f"stopped: {identity['model']} on {eset.name} has {len(items) - len(pending) + done_now}"
                                f" of {len(items)} items done; run again with the same settings to resume")
        try:
            args = (batch, [prompts[item_key(i)] for i in batch], settings, config, shot_items)
            rows = batch_rows(model, *args) if batch_call is None else batch_call(model, batch_rows, *args)
            rows = [row | notes.get(row["key"], {}) for row in rows]
        except ModelError as exc:  # a remote model that failed (after retries): what is done stays on disk
            raise ModelError(f"{identity['model']} on {eset.name}: {exc}; finished batches are saved, run again "
                             "to resume") from exc
        log.append(rows)
        done_now += len(batch)
        _report_progress(progress, identity, eset, len(items) - len(pending) + done_now, len(items), done_now,
                         started)
    rows = [log.rows[item_key(item)] for item in items]
    elapsed = time.perf_counter() - started
    scored_by = scored_by_note(scoring, settings["method"])
    return finish_cell(cell_dir, settings, eset, rows, items, elapsed, done_now, config, scored_by)


def fit_to_context(model, task: Task, items: list, prompts: dict, settings: dict,
                   policy: str) -> tuple[dict[str, dict], list[dict]]:
    """Items whose prompt and answer do not fit the model's context: with "truncate", their prompts (in `prompts`)
    are replaced by ones cut from the left, and each gets a `truncated` note for its row; with "skip" (or when not
    even a cut prompt fits) each becomes a `skipped` row, unscored. Returns (notes by item key, skipped rows)."""
    if not items:
        return {}, []
    # Likelihood reads the next token's scores: the prompt plus that one position must fit.
    max_new = settings["decoding"]["max_new_tokens"] if settings["decoding"] else 1
    notes, skipped = {}, []
    for item, fit in zip(items, model.fit_prompts([prompts[item_key(i)] for i in items], max_new)):
        if not fit.cut:
            continue
        counts = {"tokens": fit.tokens, "kept": fit.kept, "limit": fit.limit, "max_new_tokens": max_new}
        if policy == "skip" or fit.messages is None:
            skipped.append(skipped_row(task, item, counts | {"kept": 0}))
        else:
            prompts[item_key(item)] = fit.messages
            notes[item_key(item)] = {"truncated": counts}
    return notes, skipped


def fitted(model, messages, max_new_tokens: int):
    """One prompt made to fit (circular rotations are as long as the item they rotate)."""
    fit = model.fit_prompts([messages], max_new_tokens)[0]
    return fit.messages if fit.messages is not None else messages


def skipped_row(task: Task, item, counts: dict) -> dict:
    """The items.jsonl row of an item left unscored because it does not fit the model's context."""
    return {"key": item_key(item), "line": item.line, "id": item.id, **task.item_fields(item), "output": "",
            "skipped": counts}


def work_batch_size(model, batch_size: int, concurrency: int) -> int:
    """Rows per step: `batch_size` in process; a remote model gets several times `concurrency` rows, so that N
    requests stay in flight most of the time (and a step still ends often enough to save and to stop)."""
    return batch_size if model.where == IN_PROCESS else max(batch_size, 4 * concurrency)


def scored_by_note(scoring, method: str) -> dict:
    """For reports: which way multiple choice was scored, and why generation stood in for log-probabilities."""
    return {"way": scoring.way if method == "likelihood" else "generation",
            "fallback_reason": scoring.reason if scoring is not None and scoring.way is None else None}


def batch_rows(model, batch, prompts, settings: dict, config: EvalConfig, shot_items: list) -> list[dict]:
    """One batch's rows (with CircularEval's rotations when asked). Module-level, of plain arguments: on ZeroGPU it
    is pickled by name into the GPU worker (`batch_call`)."""
    rows = _batch_rows(model, batch, prompts, settings, config)
    if settings.get("circular"):
        from evaluation.circular import circular_rows

        task = get_task(settings["data"]["task"])
        rows = circular_rows(model, None, batch, rows,
                             lambda i: fitted(model, build_messages(task, i, config.prompt, shot_items), 1),
                             lambda its, ps: mc_likelihood_rows(model, its, ps, config.multi_threshold,
                                                                config.concurrency))
    return rows


def _batch_rows(model, batch, prompts, settings: dict, config: EvalConfig) -> list[dict]:
    task = get_task(settings["data"]["task"])
    try:
        if settings["method"] == "likelihood":
            return mc_likelihood_rows(model, batch, prompts, config.multi_threshold, config.concurrency)
        return generate_rows(task, model, batch, prompts, GenerationSettings(**settings["decoding"]),
                             config.concurrency)
    except ModelError as exc:
        # A server that does not say its context refused a prompt as too long (HTTP 400): ask item by item, and
        # record the one it refuses as skipped instead of ending the run.
        if getattr(exc, "reason", None) != "context":
            raise
        if len(batch) == 1:
            return [skipped_row(task, batch[0], {"tokens": None, "kept": 0, "limit": None,
                                                 "refused": str(exc)[:300]})]
    rows = []
    for item, prompt in zip(batch, prompts):
        rows += _batch_rows(model, [item], [prompt], settings, config)
    return rows


def _report_progress(progress, identity, eset, done, total, done_now, started) -> None:
    if progress is None:
        return
    elapsed = time.perf_counter() - started
    rate = done_now / elapsed if done_now and elapsed > 0 else 0.0
    eta = (total - done) / rate if rate else None
    progress(Progress(identity["model"], eset.name, done, total, rate, eta))


# ---------------------------------------------------------------------------------------------------------------
# Results of a cell


def summarise(task: str, rows: list[dict]) -> tuple[dict[str, float], dict]:
    """Metrics and breakdowns of scored rows: the task record's, as the scorer computes them."""
    return get_task(task).summarise(rows)


def finish_cell(cell_dir: Path, settings: dict, eset: EvalSet, rows: list[dict], items, elapsed: float,
                done_now: int, config: EvalConfig, scored_by: dict | None = None) -> CellResult:
    import peft
    import torch
    import transformers

    from evaluation.circular import circular_summary

    task = get_task(eset.task)
    scored = [row for row in rows if "skipped" not in row]  # a skipped item is counted apart, not scored
    metrics, breakdown = task.summarise(scored)
    by_key = {item_key(i): i for i in items}
    lines = []
    for row in rows:  # every item, a skipped one answered empty: the file stays aligned with the set
        entry = {"id": row["id"]} if row["id"] is not None else {}
        if row["id"] is None:  # aligned by line order: the scorer checks the input
            entry["input"] = task.item_input(by_key[row["key"]])
        output = "" if "skipped" in row else task.submitted(row)
        lines.append(json.dumps(entry | {"output": output}, ensure_ascii=False) + "\n")
    write_text(cell_dir / "predictions.jsonl", "".join(lines))
    report = {
        **settings, "n": len(scored), "limit": config.limit, "metrics": metrics, "breakdown": breakdown,
        "long_items": long_items_summary(rows, config.long_items),
        "conventions": task.metric_conventions,
        "method_note": task.method_notes[settings["method"]],
        "scored_by": scored_by,
        **({"circular": circular_summary(scored)} if settings.get("circular") else {}),
        "timing": {"seconds_this_run": round(elapsed, 3), "items_this_run": done_now,
                   "items_per_s": round(done_now / elapsed, 3) if done_now and elapsed > 0 else None,
                   "batch_size": config.batch_size, "concurrency": config.concurrency},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "files": {"predictions": "predictions.jsonl", "items": "items.jsonl", "settings": "settings.json"},
    }
    write_text(cell_dir / "report.json", json.dumps(report, ensure_ascii=False, indent=2))
    return CellResult(settings["model"], eset.name, eset.task, metrics, report, str(cell_dir), scored)


def long_items_summary(rows: list[dict], policy: str) -> dict:
    """report.json's count of the items longer than the context: how many were cut or skipped, and which."""
    def ids(note: str) -> list:
        return [row["id"] if row["id"] is not None else f"line {row['line']}" for row in rows if note in row]

    limits = [row[n]["limit"] for n in ("truncated", "skipped") for row in rows if row.get(n, {}).get("limit")]
    return {"policy": policy, "context": max(limits) if limits else None,
            "truncated": len(ids("truncated")), "skipped": len(ids("skipped")),
            "truncated_ids": ids("truncated"), "skipped_ids": ids("skipped")}


MAIN_METRIC = {name: task.main_metric for name, task in TASKS.items()}


def side_by_side(results: list[CellResult], dataset: str) -> list[dict]:
    """One row per item of a set: each model's answer and score beside the others, worst (lowest mean) first."""
    cells = [r for r in results if r.dataset == dataset]
    if not cells:
        return []
    task = get_task(cells[0].task)
    by_key: dict[str, dict] = {}
    for cell in cells:
        for row in cell.rows:
            entry = by_key.setdefault(row["key"], {
                "line": row["line"], "id": row["id"], "question": row[task.question_field],
                "reference": row[task.reference_field], "_scores": []})
            score = task.item_score(row)
            entry[f"{cell.model} · answer"] = task.submitted(row) or row["output"]
            entry[f"{cell.model} · {task.main_metric}"] = round(score, 2)
            entry["_scores"].append(score)
    rows = sorted(by_key.values(), key=lambda e: (sum(e["_scores"]) / len(e["_scores"]), e["line"]))
    return [{k: v for k, v in e.items() if k != "_scores"} for e in rows]
