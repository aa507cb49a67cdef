"""Chat: conversations side by side and streamed, blind votes and the leaderboard. The models live in models/.

- `chat.panes.stream_panes`: up to 4 panes from any mix of models (in-process ones in one batch through
  `models.local.registry.ModelRegistry`, each remote one over its own stream); a failing pane says why.
- `chat.session`: one browser session's conversations and blind battles, as plain data.
- `chat.votes.VoteStore`, `chat.leaderboard`: durable votes, win rates, head-to-head, Elo, Bradley–Terry.
- `python -m chat`: the terminal chat (chat/cli.py), in process or against an endpoint.
- `chat.registry`, `chat.settings`: the old import paths of `models.local.registry` and `models.settings`.
"""
