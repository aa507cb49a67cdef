"""models/local/streaming.PaneStreamer on its own: a character split across tokens never shows as U+FFFD, neither
while it streams nor at the end of an answer cut off by its token budget."""
from __future__ import annotations

import threading

import torch

from models.local.streaming import PaneStreamer

EOS = 0


class ByteTokenizer:
    """Token i (1-255) is byte i: every Chinese character takes three tokens, as in a byte-level BPE's worst case."""

    def batch_decode(self, rows, skip_special_tokens=True):
        return [bytes(t for t in row if t != EOS).decode("utf-8", errors="replace") for row in rows]


def feed(streamer: PaneStreamer, steps: list[list[int]]) -> None:
    streamer.put(torch.ones((len(steps[0]), 3), dtype=torch.long))  # the prompt, handed over first
    for step in steps:
        streamer.put(torch.tensor(step))
    streamer.end()


def run(steps: list[list[int]]) -> list:
    streamer = PaneStreamer(ByteTokenizer(), n_panes=len(steps[0]), eos_ids={EOS}, prompt_len=3, interval_s=0.0)
    thread = threading.Thread(target=feed, args=(streamer, steps))
    thread.start()
    states = [(list(s.texts), list(s.done), s.finished) for s in streamer.states(lambda: 0)]
    thread.join()
    return states


def test_a_split_character_is_hidden_until_complete_and_dropped_when_the_budget_cuts_it():
    hao, gao = "好".encode(), "高".encode()
    # pane 0 writes 好 then ends; pane 1 writes 高 and the first two bytes of 高 again when the budget runs out
    steps = [[hao[0], gao[0]], [hao[1], gao[1]], [hao[2], gao[2]], [EOS, gao[0]], [EOS, gao[1]]]
    states = run(steps)
    assert all("\ufffd" not in text for texts, _, _ in states for text in texts), states
    texts, done, finished = states[-1]
    assert finished and done == [True, False] and texts == ["好", "高"]


def test_an_answer_that_ended_itself_keeps_what_the_model_wrote():
    # a stray continuation byte, then the end-of-sequence token: the model's own (broken) text, shown as it is
    states = run([[0x80], [EOS]])
    texts, done, finished = states[-1]
    assert finished and done == [True] and texts == ["\ufffd"]
