"""DESIGN.md: imports go app.py -> ui/ -> hosting/, jobs/ -> chat/, finetune/, evaluation/; nothing under chat/,
finetune/, evaluation/, hosting/, jobs/ or safeio/ imports gradio; chat/, finetune/ and evaluation/ never import jobs/;
and safeio/ (the bounded readers) imports nothing of the project."""

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["evaluation", "finetune", "chat", "hosting", "safeio", "jobs"]
LOWER = ["evaluation", "finetune", "chat"]  # below jobs/: they get a config and a reporter, never a job


def backend_modules(packages: list[str] = BACKENDS) -> list[str]:
    names = []
    for package in packages:
        names.append(package)
        names += [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(ROOT / package)]) if m.name != "__main__"]
    return names


def test_backends_never_import_gradio():
    code = ("import importlib, sys\n"
            f"for name in {backend_modules()!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert 'gradio' not in sys.modules, name\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_training_and_evaluation_never_import_the_job_system():
    code = ("import importlib, sys\n"
            f"for name in {backend_modules(LOWER)!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert not [m for m in sys.modules if m == 'jobs' or m.startswith('jobs.')], name\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_safeio_imports_nothing_of_the_project():
    """safeio is the floor every reader builds on: it may not import a package of ours (nor gradio)."""
    ours = BACKENDS + ["ui", "models", "jobs", "app"]
    code = ("import importlib, sys\n"
            f"for name in {[m for m in backend_modules() if m.split('.')[0] == 'safeio']!r}:\n"
            "    importlib.import_module(name)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {[p for p in ours if p != 'safeio']!r})\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
