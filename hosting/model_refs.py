"""Which model references a user of a shared server may name: hub ids, and directories under the model roots.

A model reference typed into the app (the Fine-tune tab's model, its preview, the admin's load box) is handed to
`from_pretrained`, which reads whatever local directory it names. Unchecked, any user could make the server read
(and tell them about) any path it can reach. So a reference is either

- "demo" (the built-in demo model) or a name the caller always allows (the app's own base model), or
- a hub id: plain `owner/name`, letters, digits, '.', '_', '-' (no path tricks), or
- a directory inside one of the model roots the admin allows (`python app.py --model-roots A:B`, env
  MEDTUNE_MODEL_ROOTS; default: the data dir, the medtune cache and the Hugging Face cache), symlinks resolved.

Every refusal gives the same message, whatever the reason (no such path, outside the roots, a file, unreadable):
telling them apart would tell a user what exists on the server. No gradio here: the UI turns ModelRefError into
the page's language.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MODEL_ROOTS_ENV = "MEDTUNE_MODEL_ROOTS"
MAX_REF_CHARS = 1024
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
HUB_ID_RE = re.compile(rf"^{_PART}/{_PART}$")


class ModelRefError(ValueError):
    """A model reference the user may not use; the message says what is accepted, not what exists."""

    def __init__(self, text: str):
        shown = ascii(text[:80]) + ("…" if len(text) > 80 else "")
        super().__init__(f"model {shown}: not a model you may use here. Give a hub id (owner/name) or a directory "
                         "under the model folders the admin allows (ask the admin which)")
        self.text = text


def default_model_roots(data_dir: Path | str) -> tuple[Path, ...]:
    """The data dir (trained adapters, uploads), the medtune cache (the demo model) and the Hugging Face cache."""
    from huggingface_hub import constants

    from finetune.demo_model import cache_root

    return tuple(Path(p) for p in (data_dir, cache_root(), constants.HF_HUB_CACHE))


def parse_model_roots(text: str | None, data_dir: Path | str) -> tuple[Path, ...]:
    """`A:B` (os.pathsep-separated) -> roots; empty or None -> the defaults. Roots need not exist yet."""
    parts = [p.strip() for p in (text or "").split(os.pathsep) if p.strip()]
    return tuple(Path(p).expanduser() for p in parts) if parts else default_model_roots(data_dir)


def _inside(path: Path, roots: tuple[Path, ...] | list[Path]) -> bool:
    for root in roots:
        try:
            path.relative_to(Path(root).resolve())
            return True
        except (ValueError, OSError):
            continue
    return False


def check_model_ref(text, roots, *, always: tuple[str, ...] = ("demo",)) -> str:
    """The reference to load: a name in `always`, a hub id, or the resolved path of a directory inside `roots`.

    Raises ModelRefError (one message for every refusal). A hub-id-shaped text that is also a directory relative to
    the working directory is a path to transformers, so it is checked as one.
    """
    if not isinstance(text, str):
        raise ModelRefError(repr(text))
    ref = text.strip()
    if ref in always:
        return ref
    if not ref or len(ref) > MAX_REF_CHARS or any(ord(c) < 32 or c == "\x7f" for c in ref):
        raise ModelRefError(ref)
    path = Path(ref)
    try:
        is_dir = path.is_dir()
        resolved = path.resolve() if is_dir else None
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long, a NUL
        raise ModelRefError(ref) from None
    if HUB_ID_RE.match(ref) and not is_dir:
        return ref
    if resolved is None or not _inside(resolved, tuple(roots)):
        raise ModelRefError(ref)
    return str(resolved)
