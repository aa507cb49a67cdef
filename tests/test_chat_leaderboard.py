"""Leaderboard maths against tables worked out by hand (see the comments for each expected value)."""

import math

import pytest

from chat.leaderboard import bootstrap, bradley_terry, elo, head_to_head, leaderboard, records

# A beats B, A ties B, B beats A, A beats C, C "both bad" B
VOTES = [("A", "B", "a"), ("A", "B", "tie"), ("A", "B", "b"), ("C", "A", "b"), ("C", "B", "both_bad")]


def test_records_count_ties_and_both_bad_as_ties():
    recs = records(VOTES)
    # A: won vs B, tie vs B, lost vs B, won vs C -> 4 battles, 2 wins, 1 loss, 1 tie
    assert (recs["A"].battles, recs["A"].wins, recs["A"].losses, recs["A"].ties) == (4, 2, 1, 1)
    assert recs["A"].win_rate == pytest.approx(0.5) and recs["A"].score == pytest.approx(2.5 / 4)
    # B: lost, tie, won (vs A), tie (both bad, vs C) -> 4 battles, 1 win, 1 loss, 2 ties
    assert (recs["B"].battles, recs["B"].wins, recs["B"].losses, recs["B"].ties) == (4, 1, 1, 2)
    assert recs["B"].score == pytest.approx(2 / 4)
    # C: lost to A, tie with B
    assert (recs["C"].battles, recs["C"].wins, recs["C"].losses, recs["C"].ties) == (2, 0, 1, 1)
    assert recs["C"].win_rate == 0.0 and recs["C"].score == pytest.approx(0.25)


def test_head_to_head_matrix():
    models, score, games = head_to_head(VOTES)
    assert models == ["A", "B", "C"]
    assert games == [[0, 3, 1], [3, 0, 1], [1, 1, 0]]
    # A vs B: 1 win + 1 tie + 1 loss -> 1.5 / 3; A vs C: 1 / 1; B vs C: one tie -> 0.5
    assert score[0][1] == pytest.approx(0.5) and score[1][0] == pytest.approx(0.5)
    assert score[0][2] == 1.0 and score[2][0] == 0.0
    assert score[1][2] == 0.5 and score[2][1] == 0.5
    assert score[0][0] is None and score[1][1] is None


def test_elo_after_known_sequence():
    # K=32, start 1000. A beats B: expected 0.5 -> A 1016, B 984.
    # Tie: E_A = 1/(1+10^(-32/400)) = 0.545922 -> A 1014.530498, B 985.469502.
    # B beats A: E_A = 1/(1+10^(-29.061/400)) = 0.541789 -> A 997.195302, B 1002.804698.
    ratings = elo([("A", "B", "a"), ("A", "B", "tie"), ("A", "B", "b")])
    assert ratings["A"] == pytest.approx(997.1953024918979, abs=1e-9)
    assert ratings["B"] == pytest.approx(1002.8046975081021, abs=1e-9)
    # The same votes in another order give other ratings: Elo is order-dependent, so the UI bootstraps it.
    assert elo([("A", "B", "b"), ("A", "B", "tie"), ("A", "B", "a")])["A"] != pytest.approx(ratings["A"])


def test_elo_is_zero_sum():
    ratings = elo(VOTES)
    assert sum(ratings.values()) == pytest.approx(3000.0)


def test_bradley_terry_two_models_closed_form():
    # Without a prior the MLE has p_A / p_B = wins_A / wins_B = 3 -> ratings 1000 +- 200 log10(3) = +-95.424
    ratings = bradley_terry([("A", "B", "a")] * 3 + [("B", "A", "a")], prior=0.0)
    assert ratings["A"] == pytest.approx(1000 + 95.42425094393249, abs=1e-6)
    assert ratings["B"] == pytest.approx(1000 - 95.42425094393249, abs=1e-6)
    # A tie is half a win each: (2 + 0.5) / (1 + 0.5) -> +-200 log10(5/3) = +-44.370
    ratings = bradley_terry([("A", "B", "a"), ("A", "B", "a"), ("A", "B", "b"), ("A", "B", "tie")], prior=0.0)
    assert ratings["A"] - 1000 == pytest.approx(44.36974992327127, abs=1e-6)


def test_bradley_terry_symmetric_cycle_is_flat_and_prior_keeps_unbeaten_finite():
    cycle = [("A", "B", "a"), ("B", "C", "a"), ("C", "A", "a")]
    assert all(r == pytest.approx(1000.0, abs=1e-6) for r in bradley_terry(cycle, prior=0.0).values())
    unbeaten = bradley_terry([("A", "B", "a")] * 5, prior=1.0)
    assert math.isfinite(unbeaten["A"]) and unbeaten["A"] > 1000 > unbeaten["B"]
    assert unbeaten["A"] + unbeaten["B"] == pytest.approx(2000.0)


def test_bootstrap_interval_is_deterministic_and_brackets_estimate():
    votes = [("A", "B", "a")] * 6 + [("A", "B", "b")] * 2 + [("A", "B", "tie")] * 2
    first, second = bootstrap(votes, bradley_terry, rounds=100, seed=3), bootstrap(votes, bradley_terry, 100, 3)
    assert first == second
    point = bradley_terry(votes)
    for model, (lo, hi) in first.items():
        assert lo <= point[model] <= hi and lo < hi


def test_leaderboard_orders_by_bradley_terry():
    table = leaderboard(VOTES, rounds=50)
    assert [s.model for s in table][0] == "A"
    assert {s.model for s in table} == {"A", "B", "C"}
    assert all(s.elo_ci[0] <= s.elo_ci[1] for s in table)


def test_empty_and_bad_input():
    assert leaderboard([]) == [] and bradley_terry([]) == {} and head_to_head([]) == ([], [], [])
    with pytest.raises(ValueError, match="outcome"):
        records([("A", "B", "left")])
