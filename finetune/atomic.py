"""Moved to models/atomic.py (the demo model's cache and the adapter catalog need it below finetune/)."""

from models.atomic import (ABANDONED_AFTER_S, STALE_AFTER_S, TEMP_MARK, atomic_dir,  # noqa: F401
                           clean_stale_temp_dirs, is_temp_name)
