"""Leaderboard maths over blind-test votes: win rates, a head-to-head matrix, Elo and Bradley–Terry ratings.

Conventions (stated in the UI and tested against hand-computed tables in tests/test_chat_leaderboard.py):
- A vote is (model_a, model_b, outcome); "tie" and "both_bad" both count as a tie: half a win to each side.
- win rate = wins / battles (ties count as battles, not wins); score = (wins + ties / 2) / battles.
- head-to-head[i][j] = score of model i in its battles against model j (None when they never met).
- Elo: online updates in vote order, every model starts at 1000, K = 32, logistic on base 10 and scale 400.
- Bradley–Terry: maximum likelihood (Newton's method), ties as half a win each, regularised by `prior`
  virtual ties of every model against an anchor of strength 1 (keeps an unbeaten model finite), put on the Elo
  scale (400 log10 p) and shifted so that the mean rating is 1000.
- Confidence intervals: percentile bootstrap (2.5 %, 97.5 %) over votes resampled with replacement, seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

Battle = tuple[str, str, str]  # (model_a, model_b, outcome) with outcome in chat.votes.OUTCOMES
SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


def _score(outcome: str) -> float:
    if outcome not in SCORE:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(SCORE)}")
    return SCORE[outcome]


def models_of(battles: Iterable[Battle]) -> list[str]:
    return sorted({m for a, b, _ in battles for m in (a, b)})


@dataclass(frozen=True)
class Record:
    model: str
    battles: int
    wins: int
    losses: int
    ties: int  # "tie" and "both_bad" votes

    @property
    def win_rate(self) -> float:
        return self.wins / self.battles if self.battles else 0.0

    @property
    def score(self) -> float:
        return (self.wins + self.ties / 2) / self.battles if self.battles else 0.0


def records(battles: Sequence[Battle]) -> dict[str, Record]:
    counts = {m: [0, 0, 0] for m in models_of(battles)}  # wins, losses, ties
    for a, b, outcome in battles:
        s = _score(outcome)
        for model, mine in ((a, s), (b, 1.0 - s)):
            counts[model][0 if mine == 1.0 else 1 if mine == 0.0 else 2] += 1
    return {m: Record(m, sum(c), *c) for m, c in counts.items()}


def head_to_head(battles: Sequence[Battle]) -> tuple[list[str], list[list[float | None]], list[list[int]]]:
    """(models, score matrix, battle-count matrix); score[i][j] is model i's score against model j."""
    models = models_of(battles)
    index = {m: i for i, m in enumerate(models)}
    n = len(models)
    points, games = np.zeros((n, n)), np.zeros((n, n), dtype=int)
    for a, b, outcome in battles:
        i, j, s = index[a], index[b], _score(outcome)
        points[i, j] += s
        points[j, i] += 1.0 - s
        games[i, j] += 1
        games[j, i] += 1
    score = [[float(points[i, j] / games[i, j]) if games[i, j] else None for j in range(n)] for i in range(n)]
    return models, score, games.tolist()


def elo(battles: Sequence[Battle], k: float = 32.0, initial: float = 1000.0, scale: float = 400.0) -> dict[str, float]:
    ratings = {m: initial for m in models_of(battles)}
    for a, b, outcome in battles:
        expected_a = 1.0 / (1.0 + 10 ** ((ratings[b] - ratings[a]) / scale))
        delta = k * (_score(outcome) - expected_a)
        ratings[a] += delta
        ratings[b] -= delta
    return ratings


def bradley_terry(battles: Sequence[Battle], prior: float = 1.0, iterations: int = 100,
                  tolerance: float = 1e-10) -> dict[str, float]:
    """Bradley–Terry strengths on the Elo scale (mean 1000); see the module docstring for the conventions.

    Newton's method on log-strengths: the log-likelihood is concave, and it converges in a handful of steps where
    the classic MM iteration needs hundreds (which the bootstrap would repeat 200 times).
    """
    models = models_of(battles)
    if not models:
        return {}
    index = {m: i for i, m in enumerate(models)}
    n = len(models)
    wins, games = np.zeros(n), np.zeros((n, n))
    for a, b, outcome in battles:
        i, j, s = index[a], index[b], _score(outcome)
        wins[i] += s
        wins[j] += 1.0 - s
        games[i, j] += 1
        games[j, i] += 1
    wins += prior / 2  # `prior` virtual ties against the anchor (log-strength 0)
    theta = np.zeros(n)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # p[i, j] = P(i beats j)
        p_anchor = 1.0 / (1.0 + np.exp(-theta))
        gradient = wins - (games * p).sum(axis=1) - prior * p_anchor
        curvature = games * p * (1.0 - p)
        hessian = curvature - np.diag(curvature.sum(axis=1) + prior * p_anchor * (1.0 - p_anchor))
        # Without a prior the likelihood ignores a common shift: lstsq takes the minimum-norm step.
        step = np.linalg.lstsq(hessian, -gradient, rcond=None)[0]
        theta += np.clip(step, -2.0, 2.0)  # damped: an unbeaten model without a prior would otherwise jump far
        if np.max(np.abs(step)) < tolerance:
            break
    ratings = 400.0 * theta / math.log(10)
    ratings += 1000.0 - ratings.mean()
    return {m: float(ratings[index[m]]) for m in models}


def bootstrap(battles: Sequence[Battle], rate, rounds: int = 200, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % percentile interval of `rate(battles)` per model, over `rounds` resamples with replacement."""
    if not battles or rounds <= 0:
        return {}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {m: [] for m in models_of(battles)}
    for _ in range(rounds):
        picked = [battles[i] for i in rng.integers(0, len(battles), len(battles))]
        for model, value in rate(picked).items():
            samples[model].append(value)
    return {m: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if v else (math.nan, math.nan)
            for m, v in samples.items()}


@dataclass(frozen=True)
class Standing:
    model: str
    record: Record
    elo: float
    elo_ci: tuple[float, float]
    bt: float
    bt_ci: tuple[float, float]


def leaderboard(battles: Sequence[Battle], rounds: int = 200, seed: int = 0) -> list[Standing]:
    """Every model's standing, best Bradley–Terry rating first."""
    battles = list(battles)
    recs, elos, bts = records(battles), elo(battles), bradley_terry(battles)
    elo_ci = bootstrap(battles, elo, rounds, seed)
    bt_ci = bootstrap(battles, bradley_terry, rounds, seed)
    nan = (math.nan, math.nan)
    rows = [Standing(m, recs[m], elos[m], elo_ci.get(m, nan), bts[m], bt_ci.get(m, nan)) for m in recs]
    return sorted(rows, key=lambda s: (-s.bt, s.model))
