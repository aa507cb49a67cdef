"""Per-session conversation helpers and decoding settings: plain data, no model."""

import random

import pytest

from chat.session import Battle, add_turn, check_selection, drop_last_turn, new_battle, with_system
from chat.settings import GenerationSettings


def test_histories_are_per_model_and_regenerate_drops_the_last_exchange():
    h = add_turn({}, ["base", "a"], "q1", ["base-1", "a-1"])
    h = add_turn(h, ["base", "a"], "q2", ["base-2", "a-2"])
    assert [m["content"] for m in h["a"]] == ["q1", "a-1", "q2", "a-2"]
    assert with_system("  sys ", h["base"][:2], "q3")[0] == {"role": "system", "content": "sys"}
    assert with_system("", [], "q")[0]["role"] == "user"
    dropped, prompt = drop_last_turn(h, ["base", "a"])
    assert prompt == "q2" and len(dropped["a"]) == 2 and len(h["a"]) == 4  # the original is untouched
    assert drop_last_turn({}, ["base"]) == ({}, None)


def test_selection_limits():
    check_selection(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="between 1 and 4"):
        check_selection([], ["a"])
    with pytest.raises(ValueError, match="between 1 and 4"):
        check_selection(list("abcde"), list("abcde"))
    with pytest.raises(ValueError, match="no longer available: gone"):
        check_selection(["gone"], ["a"])


def test_battle_pairs_are_random_distinct_and_vote_once():
    rng = random.Random(0)
    pairs = {(b.model_a, b.model_b) for b in (new_battle(["base", "x", "y"], rng) for _ in range(60))}
    assert all(a != b for a, b in pairs) and ("base", "x") in pairs and ("x", "base") in pairs  # both sides
    with pytest.raises(ValueError, match="at least two models"):
        new_battle(["base"])
    battle = Battle("base", "x")
    with pytest.raises(ValueError, match="before voting"):
        battle.vote("a", "s", "demo")
    battle = battle.answered("q", "A says", "B says", {"temperature": 0.0})
    vote = battle.vote("b", "session-1", "demo")
    assert (vote.prompt, vote.answer_a, vote.answer_b, vote.outcome) == ("q", "A says", "B says", "b")
    assert len(vote.conversation_a) == 2 and vote.settings == {"temperature": 0.0}
    from dataclasses import replace

    with pytest.raises(ValueError, match="voted on already"):
        replace(battle, voted="b").vote("a", "s", "demo")


def test_settings_from_ui_values_and_generate_kwargs():
    s = GenerationSettings.from_values(max_new_tokens=64.0, temperature=0.0, top_p=0.9, top_k=20.0,
                                       repetition_penalty=1.1, seed=None)
    assert s.max_new_tokens == 64 and s.top_k == 20 and s.seed == 0 and s.greedy
    kwargs = s.generate_kwargs()
    assert kwargs["do_sample"] is False and "temperature" not in kwargs and kwargs["repetition_penalty"] == 1.1
    sampled = GenerationSettings(temperature=0.7, top_p=0.9, top_k=20).generate_kwargs()
    assert sampled["do_sample"] and sampled["temperature"] == 0.7 and sampled["top_k"] == 20
    with pytest.raises(ValueError, match="max_new_tokens must be between 1 and 8192, got 0"):
        GenerationSettings(max_new_tokens=0)
