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


# ---------------------------------------------------------------------------------------------------------------
# No import cycles inside a package: a cycle hides which module is the lower one (a lazy import inside a function
# is how a cycle usually survives, so those count), and it breaks as soon as someone moves that import to the top.

CYCLE_PACKAGES = ["models", "jobs", "finetune", "evaluation", "chat", "safeio", "hosting", "ui"]
# Cycles left on purpose: frozenset of modules -> why. Empty: keep it so.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _under_type_checking(tree: ast.AST) -> set[int]:
    """ids of import nodes inside `if TYPE_CHECKING:`: they never run, so they make no cycle."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def module_imports(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports, anywhere in the file (lazy imports included);
    `from a import b` counts as importing a.b when b is a module, else as importing a."""
    paths = {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped, targets = _under_type_checking(tree), set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".")[: len(name.split(".")) - node.level + is_package] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets |= {f"{module}.{a.name}" if f"{module}.{a.name}" in paths else module for a in node.names}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path):
    """The checker itself: a cycle through a lazy (or relative) import is one, one under TYPE_CHECKING is not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for name, text in {"__init__.py": "", "sub/__init__.py": "", "low.py": "def f():\n    from pkg import top\n",
                       "top.py": "from .sub import mid\n", "sub/mid.py": "from pkg.low import f\n",
                       "hint.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import plain\n",
                       "plain.py": "import pkg.hint\n"}.items():
        (pkg / name).write_text(text, encoding="utf-8")
    graph = module_imports("pkg", tmp_path)
    assert graph["pkg.top"] == {"pkg.sub.mid"} and graph["pkg.hint"] == set() and graph["pkg.plain"] == {"pkg.hint"}
    assert cycles(graph) == [["pkg.low", "pkg.sub.mid", "pkg.top"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", CYCLE_PACKAGES)
def test_no_import_cycles_inside_a_package(package):
    found = [c for c in cycles(module_imports(package)) if frozenset(c) not in KNOWN_CYCLES]
    assert not found, f"import cycles in {package}/ (break them: move what both need below both): {found}"
