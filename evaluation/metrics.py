"""Metrics: ROUGE-1/2/L and BLEU-4 for free-form answers, accuracy for multiple choice.

The convention is the one ChatGLM / LLaMA-Factory / MindFormers report, so numbers compare with theirs:

* ROUGE-N / ROUGE-L: the F value of ``rouge_chinese.Rouge().get_scores`` on jieba-segmented text
  (tokens joined by spaces), x100, per sample, then the plain mean over samples.
* BLEU-4: ``nltk`` ``sentence_bleu`` on characters, smoothing method 3, x100.
* An empty (or whitespace-only) prediction scores 0 on all four and stays in the denominator.
* An empty (or whitespace-only) reference is a data error: both scorers raise ``ValueError`` naming its index.
  rouge-chinese itself raises on it, and no score means anything against nothing.

``plain_qa_item_scores`` is that convention written as the plain loop everyone copies. ``qa_item_scores`` returns
the same floats (the tests and ``bench/bench_scorer.py`` check every value to 1e-9 on every public set) and is much
faster, because it keeps the expensive libraries' *semantics* but not their per-pair algorithms:

* jieba stays the segmenter (identical tokens are required). jieba cuts a text block by block (a block is a maximal
  run of its ``re_han_default`` characters, or the text between two such runs) and each block is cut independently
  of its neighbours, so we cut every distinct block once per call; repeated texts and shared sentences are free.
* rouge-chinese's preprocessing (its own ``cut_sent`` and whitespace normalisation) is called as is: it is linear and
  decides the tokens, including the "" token a whitespace-only line becomes. Its scoring is then replaced:
  ROUGE-1/2 use sets of n-grams (rouge-chinese's default ``exclusive=True`` counts *distinct* n-grams), and ROUGE-L,
  which despite the name ``rouge_l_summary_level`` is one plain LCS over all tokens of each text, uses a
  bit-parallel LCS on Python ints instead of a dict-based O(n*m) table.
* nltk's sentence_bleu builds ``Fraction`` objects and Counters per pair; we count each text's character n-grams once
  and replay nltk's exact float operations (see ``_bleu4``).
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import jieba
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge
from rouge_chinese.rouge_score import f_r_p_rouge_n

jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict..." lines would clutter every report and CLI run

QA_METRICS = ("rouge-1", "rouge-2", "rouge-l", "bleu-4")

CONVENTIONS: dict[str, str] = {
    "rouge-1": "ROUGE-1 F of rouge-chinese on jieba-segmented text (distinct unigrams), x100, per sample, then the "
               "plain mean; an empty prediction scores 0 and stays in the denominator.",
    "rouge-2": "ROUGE-2 F of rouge-chinese on jieba-segmented text (distinct bigrams), x100, per sample, then the "
               "plain mean; an empty prediction scores 0 and stays in the denominator.",
    "rouge-l": "ROUGE-L F of rouge-chinese on jieba-segmented text (LCS over all tokens), x100, per sample, then the "
               "plain mean; an empty prediction scores 0 and stays in the denominator.",
    "bleu-4": "BLEU-4 of nltk sentence_bleu on characters with smoothing method 3, x100, per sample, then the plain "
              "mean; an empty prediction scores 0 and stays in the denominator.",
    "accuracy": "Accuracy is all-or-nothing on the sorted set of option letters (a multi-answer question counts only "
                "if every letter matches); an unparsed prediction is wrong and stays in the denominator.",
}

_ZERO = {name: 0.0 for name in QA_METRICS}
# Only its cut_sent is used (a pure function of the text); get_scores is called on fresh instances.
_ROUGE = Rouge()
_SMOOTHING = SmoothingFunction().method3


def _is_empty(text: str) -> bool:
    # rouge-chinese raises on exactly these: its cut_sent rstrips the joined tokens, and jieba keeps every
    # character, so a text yields no sentence iff it is whitespace only.
    return not text.strip()


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        if not isinstance(pred, str):
            raise TypeError(f"predictions[{i}] is {type(pred).__name__}, expected str")
        if not isinstance(ref, str):
            raise TypeError(f"references[{i}] is {type(ref).__name__}, expected str")
        if _is_empty(ref):
            raise ValueError(f"references[{i}] is empty: ROUGE and BLEU are undefined against an empty reference")


def plain_qa_item_scores(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """The reference implementation: jieba + rouge-chinese + nltk per pair, exactly as the convention reads."""
    _check_pairs(predictions, references)
    rouge = Rouge()
    smoothing = SmoothingFunction().method3
    items = []
    for pred, ref in zip(predictions, references):
        if _is_empty(pred):
            items.append(dict(_ZERO))
            continue
        scores = rouge.get_scores(" ".join(jieba.cut(pred)), " ".join(jieba.cut(ref)))[0]
        bleu = sentence_bleu([list(ref)], list(pred), smoothing_function=smoothing)
        items.append({
            "rouge-1": scores["rouge-1"]["f"] * 100,
            "rouge-2": scores["rouge-2"]["f"] * 100,
            "rouge-l": scores["rouge-l"]["f"] * 100,
            "bleu-4": bleu * 100,
        })
    return items


@dataclass(slots=True)
class _Text:
    """Everything the pair scores need from one text, computed once however often the text appears."""
    n_chars: int
    words: list[str]              # rouge-chinese's tokens, in order
    unigrams: set[str]
    bigrams: set[tuple[str, str]]
    word_masks: dict[str, int]    # word -> bit i set where words[i] is that word (for the bit-parallel LCS)
    char_ngrams: tuple[Counter, Counter, Counter, Counter]  # character 1..4-gram counts (for BLEU)


def _segment(text: str, block_cuts: dict[str, list[str]]) -> list[str]:
    """jieba.lcut(text), cutting each distinct block once (jieba cuts blocks independently of each other)."""
    tokens: list[str] = []
    for block in jieba.re_han_default.split(text):
        if not block:
            continue
        cut = block_cuts.get(block)
        if cut is None:
            # A block on its own goes down the same path in jieba.cut as inside the whole text.
            cut = block_cuts[block] = jieba.lcut(block)
        tokens.extend(cut)
    return tokens


def _rouge_words(tokens: list[str]) -> list[str]:
    """The token list rouge-chinese scores, from the same steps as Rouge._get_scores and _split_into_words.

    Sentence boundaries as such do not matter (every metric joins all sentences), but cut_sent's inserted newlines
    do: a piece that is only whitespace (e.g. between two newlines) becomes the sentence "" and so the token "",
    which counts in every metric. So cut_sent is called as is rather than re-derived from its regexes.
    """
    words: list[str] = []
    for piece in _ROUGE.cut_sent(" ".join(tokens)):
        if len(piece) > 0:
            # rouge-chinese: " ".join(piece.split()).split(" "), which is [""] for a whitespace-only piece.
            words.extend(piece.split() or [""])
    return words


def _char_ngram_counts(text: str, n: int) -> Counter:
    # A character n-gram as a substring is one-to-one with nltk's tuple of n characters.
    return Counter([text[i:i + n] for i in range(len(text) - n + 1)])


def _analyse(text: str, block_cuts: dict[str, list[str]]) -> _Text:
    words = _rouge_words(_segment(text, block_cuts))
    masks: dict[str, int] = {}
    for i, word in enumerate(words):
        masks[word] = masks.get(word, 0) | (1 << i)
    return _Text(
        n_chars=len(text),
        words=words,
        unigrams=set(words),
        bigrams=set(zip(words, words[1:])),
        word_masks=masks,
        char_ngrams=tuple(_char_ngram_counts(text, n) for n in (1, 2, 3, 4)),
    )


def _lcs_length(a: _Text, b: _Text) -> int:
    """Length of the longest common subsequence of a.words and b.words (Allison-Dix / Hyyro bit-parallel).

    Bit i of v is 0 where the LCS of a.words[:i+1] with the prefix of b seen so far grew at i; one step per word
    of b costs a few big-int operations on len(a) bits, instead of len(a) Python steps.
    """
    if len(a.words) < len(b.words):
        a, b = b, a  # the longer one as bits: fewer Python-level steps
    masks = a.word_masks
    v = (1 << len(a.words)) - 1
    for word in b.words:
        match = masks.get(word)
        if match:
            u = v & match
            # u is a subset of v, so v - u never borrows; v + u may carry above the top bit, which only adds
            # garbage bits above len(a) that the final mask drops (the low bits never depend on them).
            v = (v + u) | (v - u)
    return len(a.words) - (v & ((1 << len(a.words)) - 1)).bit_count()


def _rouge_l_f(pred: _Text, ref: _Text) -> float:
    # Same operations, in the same order, as rouge_score.rouge_l_summary_level (both lengths are >= 1 here).
    llcs = _lcs_length(ref, pred)
    r_lcs = llcs / len(ref.words)
    p_lcs = llcs / len(pred.words)
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))


def _bleu4(pred: _Text, ref: _Text) -> float:
    """nltk sentence_bleu([list(ref)], list(pred), smoothing_function=method3), replaying its float operations.

    nltk keeps each modified precision as an unnormalised Fraction(clipped, max(1, count)); math.log sees it as
    the correctly rounded float of that ratio, which is exactly int / int here.
    """
    numerators, denominators = [], []
    for n in range(4):
        hyp_counts, ref_counts = pred.char_ngrams[n], ref.char_ngrams[n]
        clipped = 0
        for gram, count in hyp_counts.items():
            in_ref = ref_counts.get(gram)
            if in_ref:
                clipped += count if count < in_ref else in_ref
        numerators.append(clipped)
        denominators.append(max(1, pred.n_chars - n))
    if numerators[0] == 0:
        return 0.0
    if pred.n_chars > ref.n_chars:
        brevity_penalty = 1
    else:  # pred.n_chars >= 1: empty predictions never get here
        brevity_penalty = math.exp(1 - ref.n_chars / pred.n_chars)
    log_terms = []
    k = 1  # method3: the k-th order with no match gets precision 1 / (2**k * denominator)
    for numerator, denominator in zip(numerators, denominators):
        if numerator == 0:
            precision = 1 / (2**k * denominator)
            k += 1
        else:
            precision = numerator / denominator
        log_terms.append(0.25 * math.log(precision))
    return brevity_penalty * math.exp(math.fsum(log_terms))


def qa_item_scores(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """Per-pair ROUGE-1/2/L and BLEU-4 (x100); the same values as plain_qa_item_scores, much faster."""
    _check_pairs(predictions, references)
    # Per call, not global: jieba's dictionary can change between calls (jieba.add_word).
    block_cuts: dict[str, list[str]] = {}
    texts: dict[str, _Text] = {}
    for text in (*predictions, *references):
        if text not in texts and not _is_empty(text):
            texts[text] = _analyse(text, block_cuts)

    items = []
    for pred_text, ref_text in zip(predictions, references):
        if _is_empty(pred_text):
            items.append(dict(_ZERO))
            continue
        pred, ref = texts[pred_text], texts[ref_text]
        rouge_1 = f_r_p_rouge_n(len(pred.unigrams), len(ref.unigrams), len(pred.unigrams & ref.unigrams))["f"]
        rouge_2 = f_r_p_rouge_n(len(pred.bigrams), len(ref.bigrams), len(pred.bigrams & ref.bigrams))["f"]
        items.append({
            "rouge-1": rouge_1 * 100,
            "rouge-2": rouge_2 * 100,
            "rouge-l": _rouge_l_f(pred, ref) * 100,
            "bleu-4": _bleu4(pred, ref) * 100,
        })
    return items


def mean_scores(items: list[dict[str, float]]) -> dict[str, float]:
    """Plain mean of each metric over the items (every item must carry the same metric names)."""
    if not items:
        raise ValueError("no scored items to average")
    names = list(items[0])
    for i, item in enumerate(items):
        if set(item) != set(names):
            raise ValueError(f"item {i} has metrics {sorted(item)}, expected {sorted(names)}")
    return {name: math.fsum(item[name] for item in items) / len(items) for name in names}


def _letter_set(text: str) -> frozenset[str]:
    # Separators ("B,D", "B D", "B、D") and case carry no meaning; only the set of option letters does.
    return frozenset(ch for ch in text.upper() if "A" <= ch <= "Z")


def mc_is_correct(predicted: str | None, answer: str) -> bool:
    """All-or-nothing: the predicted letter set equals the answer's ("DB" == "BD"; a subset is wrong)."""
    expected = _letter_set(answer)
    if not expected:
        raise ValueError(f"answer {answer!r} has no option letter")
    if predicted is None:
        return False
    return _letter_set(predicted) == expected
