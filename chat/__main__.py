"""`python -m chat --model M --adapter A [--adapter B ...] [--compare]`: see chat/cli.py."""

from chat.cli import main

raise SystemExit(main())
