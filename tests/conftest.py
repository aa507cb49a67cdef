"""Shared test setup: everything offline, shared data located beside the checkout."""
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
SHARED_PUBLIC = ROOT.parent / "shared" / "data" / "public"


@pytest.fixture(scope="session")
def shared_public() -> Path:
    if not SHARED_PUBLIC.is_dir():
        pytest.skip(f"{SHARED_PUBLIC} is absent")
    return SHARED_PUBLIC
