"""Chat: one base model loaded once with LoRA adapters attached by name, streamed side by side; blind votes.

- `chat.registry.ModelRegistry` / `shared_registry`: load the base, discover and attach adapters, generate
  (batched, one model: `generate`; several models in one batch, streamed: `stream`, `generate_panes`).
- `chat.settings.GenerationSettings`: decoding settings (greedy by default).
- `chat.votes.VoteStore`, `chat.leaderboard`: durable votes, win rates, head-to-head, Elo, Bradley–Terry.
- `python -m chat`: the terminal chat (chat/cli.py).
"""
