"""DESIGN.md: imports go app.py -> ui/ -> hosting/, jobs/ -> chat/, finetune/, evaluation/ -> models/; nothing under
models/, chat/, finetune/, evaluation/, hosting/, jobs/ or safeio/ imports gradio; chat/, finetune/ and evaluation/
never import jobs/ (their `__main__.py` entry points excepted: they sit at the top, like app.py); models/ imports no
other package of ours (safeio/, the bounded readers, excepted: it imports nothing of the project); chat/ and
evaluation/ do not import each other."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["models", "evaluation", "finetune", "chat", "hosting", "safeio", "jobs"]
LOWER = ["models", "evaluation", "finetune", "chat"]  # below jobs/: they get a config and a reporter, never a job
OURS = {"models", "chat", "evaluation", "finetune", "hosting", "ui", "app", "jobs", "bench", "safeio"}


def backend_modules(packages: list[str] = BACKENDS) -> list[str]:
    names = []
    for package in packages:  # subpackages too (models.local, models.remote)
        names.append(package)
        names += [f"{package}.{m.name}" for m in pkgutil.walk_packages([str(ROOT / package)]) if m.name != "__main__"]
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
    ("models", {"models", "safeio"}),  # the ground floor (safeio imports nothing of ours)
    ("chat", {"chat", "models", "safeio"}),
    ("evaluation", {"evaluation", "models", "safeio"}),
])
def test_import_direction(package, allowed):
    wrong = {f: sorted(names - allowed) for f, names in imported_packages(package).items() if names - allowed}
    assert not wrong, f"{package}/ may import only {sorted(allowed)}: {wrong}"


@pytest.mark.parametrize("package", LOWER)
def test_only_entry_points_import_the_job_system(package):
    """Below jobs/ a module gets a config and a reporter; only `python -m PACKAGE`'s entry point (`__main__.py`, at
    the top of the import order like app.py) may hand a command to jobs/. Lazy imports inside functions count too."""
    wrong = sorted(f for f, names in imported_packages(package).items()
                   if "jobs" in names and Path(f).name != "__main__.py")
    assert not wrong, f"only {package}/__main__.py may import jobs/: {wrong}"


def test_the_job_system_finds_lazy_imports(tmp_path, monkeypatch):
    """The check above reads imports inside functions too (a lazy `from jobs... import` is still an upward import)."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("def f():\n    from jobs.files import JobFiles\n    return JobFiles\n")
    (tmp_path / "pkg" / "__main__.py").write_text("import jobs.cli\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imported_packages("pkg") == {"pkg/__main__.py": {"jobs"}, "pkg/mod.py": {"jobs"}}
