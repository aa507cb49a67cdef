"""DESIGN.md: imports go app.py -> ui/ -> backends -> models/; nothing under models/, chat/, finetune/, evaluation/ or
hosting/ imports gradio; models/ imports no other package of ours; chat/ and evaluation/ do not import each other."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["models", "evaluation", "finetune", "chat", "hosting"]
OURS = {"models", "chat", "evaluation", "finetune", "hosting", "ui", "app", "jobs", "bench"}


def package_modules(package: str) -> list[str]:
    return [f"{package}.{m.name}" for m in pkgutil.walk_packages([str(ROOT / package)]) if m.name != "__main__"] \
        if (ROOT / package).is_dir() else []


def backend_modules() -> list[str]:
    names = []
    for package in BACKENDS:
        names += [package, *package_modules(package)]
    return names


def test_backends_never_import_gradio():
    code = ("import importlib, sys\n"
            f"for name in {backend_modules()!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert 'gradio' not in sys.modules, name\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def imported_packages(package: str) -> dict[str, set[str]]:
    """file -> the top-level packages of ours it imports (anywhere in the file, lazy imports included)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names & OURS
    return found


@pytest.mark.parametrize("package, allowed", [
    ("models", {"models"}),  # the ground floor
    ("chat", {"chat", "models"}),
    ("evaluation", {"evaluation", "models"}),
])
def test_import_direction(package, allowed):
    wrong = {f: sorted(names - allowed) for f, names in imported_packages(package).items() if names - allowed}
    assert not wrong, f"{package}/ may import only {sorted(allowed)}: {wrong}"
