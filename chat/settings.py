"""Moved to models/settings.py (chat, evaluation and every model share it); kept importable from here."""

from models.settings import MAX_NEW_TOKENS_LIMIT, GenerationSettings  # noqa: F401
