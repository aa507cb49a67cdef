"""DESIGN.md: imports go app.py -> ui/ -> hosting/, jobs/ -> chat/, finetune/, evaluation/; nothing under chat/,
finetune/, evaluation/, hosting/ or jobs/ imports gradio, and chat/, finetune/ and evaluation/ never import jobs/."""

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["evaluation", "finetune", "chat", "hosting", "jobs"]
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
