"""Benchmark: evaluation.metrics.qa_item_scores against the plain jieba + rouge-chinese + nltk loop.

    python bench/bench_scorer.py [--data FILE_OR_DIR] [--long-pairs 100] [--breakdown] [--json-out FILE]

--data: a JSONL file of free-form items (their "output" answers), or a folder of such sets (*/*_qa.jsonl, the layout
of the public subsets). Default: the public subsets' Huatuo test set when ../shared/data/public is there, else the
project's own samples in data/ (a note says so: a few hundred short answers, so the timings are small and noisier,
and not comparable to figures measured on the public sets).

Sets (all deterministic, seeded):
  huatuo-shuffled   the answers (2,000 Huatuo answers by default), each scored against another, shuffled answer
  huatuo-near-copy  each answer against a near copy of itself (~3% characters dropped, ~3% replaced)
  long-shuffled     ~800-character answers (consecutive answers of every free-form set joined by newlines),
                    each scored against another, shuffled one

Both scorers run in this one process, one after the other, on the same inputs. jieba's dictionary is loaded once
before any timing (its load time is printed and excluded from both sides; the ratio with it charged to both sides
is printed too). Every per-sample value must agree to 1e-9, or the script exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jieba  # noqa: E402
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # noqa: E402
from rouge_chinese import Rouge  # noqa: E402

from evaluation.metrics import QA_METRICS, plain_qa_item_scores, qa_item_scores  # noqa: E402
from bench.report import emit_json  # noqa: E402

PUBLIC = ROOT.parent / "shared" / "data" / "public"
SEED = 20240601


def _outputs(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["output"] for line in f if line.strip()]


def _shuffled(texts: list[str], seed: int) -> list[str]:
    other = list(texts)
    random.Random(seed).shuffle(other)
    return other


def _near_copy(text: str, rng: random.Random) -> str:
    chars = []
    for ch in text:
        r = rng.random()
        if r < 0.03:
            continue
        chars.append(rng.choice(text) if r < 0.06 else ch)
    return "".join(chars) or text


def answer_sets(data: Path | None) -> tuple[list[str], list[str], str]:
    """(answers, pool for the long answers, a note of what is measured) from --data, or the default."""
    if data is None:
        huatuo = PUBLIC / "huatuo26m_test" / "huatuo26m_test_qa.jsonl"
        if huatuo.is_file():
            return _outputs(huatuo), _pool(sorted(PUBLIC.glob("*/*_qa.jsonl"))), f"data: {huatuo}"
        own = [ROOT / "data" / name
               for name in ("qa_sample.jsonl", "qa_sample_competition.jsonl", "train_sample.jsonl")]
        answers = _pool(own)
        return answers, answers, (f"note: {PUBLIC} is absent, so this runs on the project's own samples "
                                  f"({len(answers)} "
                                  "short answers from data/): the same code paths, but small, noisier timings, not "
                                  "comparable to figures from the public sets (give a set with --data)")
    if data.is_dir():
        files = sorted(data.glob("*/*_qa.jsonl")) or sorted(data.glob("*.jsonl"))
        if not files:
            raise SystemExit(f"error: {data}: no */*_qa.jsonl or *.jsonl files in this folder")
        return _pool(files[:1]), _pool(files), f"data: {files[0]} (long answers from {len(files)} files)"
    if not data.is_file():
        raise SystemExit(f"error: {data}: no such file or folder")
    answers = _pool([data])
    return answers, answers, f"data: {data}"


def _pool(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    item = json.loads(line)
                    if not isinstance(item.get("output"), str):
                        raise SystemExit(f"error: {path}, line {n}, field 'output': missing or not a string")
                    out.append(item["output"])
    return out


def _long_answers(pool: list[str], min_chars: int, count: int) -> list[str]:
    answers, current = [], []
    for out in pool:
        current.append(out)
        if sum(map(len, current)) >= min_chars:
            answers.append("\n".join(current))
            current = []
            if len(answers) == count:
                break
    return answers


def _time(fn, predictions, references):
    start = time.perf_counter()
    items = fn(predictions, references)
    return time.perf_counter() - start, items


def _bench_set(name: str, predictions: list[str], references: list[str], jieba_init_s: float) -> dict:
    ours_s, ours = _time(qa_item_scores, predictions, references)
    plain_s, plain = _time(plain_qa_item_scores, predictions, references)
    max_diff = max(abs(a[k] - b[k]) for a, b in zip(ours, plain) for k in QA_METRICS)
    return {
        "bench": "scorer", "set": name, "pairs": len(predictions),
        "mean_chars": round(sum(map(len, predictions + references)) / (2 * len(predictions)), 1),
        "plain_s": round(plain_s, 3), "ours_s": round(ours_s, 3), "ratio": round(plain_s / ours_s, 2),
        "jieba_init_s": round(jieba_init_s, 3),
        "ratio_with_init": round((plain_s + jieba_init_s) / (ours_s + jieba_init_s), 2),
        "max_abs_diff": max_diff, "agree_1e-9": max_diff <= 1e-9,
        "cpu_count": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def _breakdown(predictions: list[str], references: list[str]) -> dict:
    """Where the time goes: the plain loop's three libraries, and the jieba share of ours."""
    start = time.perf_counter()
    segmented = [(" ".join(jieba.cut(p)), " ".join(jieba.cut(r))) for p, r in zip(predictions, references)]
    plain_jieba = time.perf_counter() - start
    rouge = Rouge()
    start = time.perf_counter()
    for hyp, ref in segmented:
        rouge.get_scores(hyp, ref)
    plain_rouge = time.perf_counter() - start
    smoothing = SmoothingFunction().method3
    start = time.perf_counter()
    for pred, ref in zip(predictions, references):
        sentence_bleu([list(ref)], list(pred), smoothing_function=smoothing)
    plain_nltk = time.perf_counter() - start
    # Ours segments each distinct text once (block cache aside, this is its jieba work).
    start = time.perf_counter()
    for text in dict.fromkeys(predictions + references):
        jieba.lcut(text)
    ours_jieba = time.perf_counter() - start
    start = time.perf_counter()
    qa_item_scores(predictions, references)
    ours_total = time.perf_counter() - start
    return {"plain_jieba_s": round(plain_jieba, 3), "plain_rouge_chinese_s": round(plain_rouge, 3),
            "plain_nltk_s": round(plain_nltk, 3), "ours_jieba_s": round(ours_jieba, 3),
            "ours_rest_s": round(ours_total - ours_jieba, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=None,
                        help="free-form JSONL file, or a folder of */*_qa.jsonl sets (default: the public Huatuo "
                             "set if ../shared/data/public is there, else the project's samples in data/)")
    parser.add_argument("--long-pairs", type=int, default=100, help="pairs in the long-answer set")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time each library of the plain loop, and jieba within ours, per set")
    parser.add_argument("--json-out", type=Path, help="append one JSON line per set to this file")
    args = parser.parse_args()

    huatuo, pool, note = answer_sets(args.data)
    if len(huatuo) < 2:
        raise SystemExit("error: fewer than 2 answers to score against each other")
    print(note, flush=True)

    jieba.setLogLevel(60)
    start = time.perf_counter()
    jieba.initialize()
    jieba_init_s = time.perf_counter() - start
    # Warm both paths (imports, regex compilation) on a few pairs so neither pays first-call costs in the timing.
    plain_qa_item_scores(["你好，请多喝水。"], ["多喝水，注意休息。"])
    qa_item_scores(["你好，请多喝水。"], ["多喝水，注意休息。"])

    rng = random.Random(SEED)
    long_answers = _long_answers(pool, 800, args.long_pairs)
    sets = [
        ("huatuo-shuffled", huatuo, _shuffled(huatuo, SEED)),
        ("huatuo-near-copy", [_near_copy(t, rng) for t in huatuo], huatuo),
        ("long-shuffled", long_answers, _shuffled(long_answers, SEED)),
    ]

    rows = []
    print(f"jieba dictionary load: {jieba_init_s:.2f} s (excluded from both sides below)")
    print(f"{'set':<18}{'pairs':>6}{'chars':>7}{'plain s':>10}{'ours s':>9}{'ratio':>8}{'w/ init':>9}  agree")
    for name, predictions, references in sets:
        if len(predictions) < 2:  # a small --data set may give fewer than two long answers
            print(f"{name:<18}skipped: fewer than 2 answers")
            continue
        row = _bench_set(name, predictions, references, jieba_init_s)
        if args.breakdown:
            row["breakdown"] = _breakdown(predictions, references)
        row["data"] = note
        rows.append(row)
        print(f"{name:<18}{row['pairs']:>6}{row['mean_chars']:>7.0f}{row['plain_s']:>10.2f}{row['ours_s']:>9.2f}"
              f"{row['ratio']:>7.1f}x{row['ratio_with_init']:>8.1f}x  {row['agree_1e-9']}", flush=True)
        if args.breakdown:
            print("    " + ", ".join(f"{k} {v:.2f}" for k, v in row["breakdown"].items()), flush=True)
    emit_json(rows, args.json_out)
    return 0 if all(row["agree_1e-9"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
