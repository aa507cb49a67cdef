"""The README is a contract: every shell command and Python example in it runs here.

`readme_examples()` pulls every ```bash and ```python block out of README.md (a bash line ending in `\\` continues on
the next; comments and blank lines are dropped). Each example must have an entry in COMMANDS, keyed by its exact
text: either the line actually run (small sizes substituted, written out in full so the substitution is visible),
the exit status it must end with and a line (regex) its output must contain, or a reason it is skipped (GPU, Docker,
network, several processes). An example without an entry fails `test_every_readme_example_has_an_entry`, and one
whose entry no longer matches what it does fails `test_readme_examples_run`: so a README edit that adds or breaks a
command breaks the suite.

Commands written inline in the prose and tables (`python -m ...` in backticks), and the fenced ones that are
skipped, are checked against the commands' own argparse parsers (`inline_problems`): the command exists, and every
subcommand, flag and fixed-choice value it names is one the parser has; so a README flag that no longer exists fails
the suite too.

The commands run in order in one scratch folder (cwd) holding a link to the project's `data/`, the way a user runs
them from the checkout, with one shared demo-model cache (conftest's medtune_home) and one 2-step training run whose
job id and adapter name later commands reuse ({job}, {adapter}).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TIMEOUT_S = 240


@dataclass(frozen=True)
class Run:
    cmd: str  # what runs (bash), with {job}, {adapter}, {port}, {python} filled in from earlier commands
    rc: int = 0
    expect: str = ""  # a regex one line of stdout+stderr must match
    stdin: str | None = None


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Server:
    """A command that starts the app: started on a free port, checked on /healthz, then the examples that need it."""
    cmd: str


@dataclass(frozen=True)
class PythonExample:
    code: str  # the example with the server's address and a real user's login substituted
    expect: str


PW = "readme-test-pw"
NO_NET = "needs the network (pip downloads the dependencies)"
COMMANDS: dict[str, object] = {
    # --- first lines
    'pip install -e . && python app.py': Skip(NO_NET + "; `python app.py` itself is run below"),
    'pip install -e ".[test]" && python -m pytest': Skip(NO_NET + "; and it is the suite this test is part of"),
    # --- Score a submission
    "python -m evaluation score --ref data/mc_sample.jsonl --pred data/mc_sample_predictions.jsonl":
        Run("{python} -m evaluation score --ref data/mc_sample.jsonl --pred data/mc_sample_predictions.jsonl",
            rc=4, expect=r"accuracy\s+62\.50"),
    "python -m evaluation score --ref data/qa_sample_competition.jsonl --pred data/qa_sample_predictions.jsonl "
    "--json report.json --per-item items.jsonl":
        Run("{python} -m evaluation score --ref data/qa_sample_competition.jsonl "
            "--pred data/qa_sample_predictions.jsonl --json report.json --per-item items.jsonl "
            "&& test -s report.json && test -s items.jsonl",
            rc=4, expect=r"rouge-l\s+36\.61"),  # the sample predictions hold deliberate mistakes: exit 4
    # --- The whole competition loop: train.jsonl, val_*.jsonl and test.jsonl are the project's samples here
    "python -m finetune train --data train.jsonl --output runs/adapters/my-lora":
        Run("{python} -m finetune train --data data/train_sample.jsonl --output runs/adapters/my-lora --max-steps 2",
            expect=r"^completed: .*runs/adapters/my-lora"),
    "python -m evaluation run --adapter runs/adapters/my-lora --data val_mc.jsonl --data val_qa.jsonl --out results/":
        Run("{python} -m evaluation run --adapter runs/adapters/my-lora --data data/mc_sample.jsonl "
            "--data data/qa_sample.jsonl --out results/ --limit 4 --max-new-tokens 8", expect=r"^\s*my-lora\s+\d"),
    "python -m evaluation score --ref val_qa.jsonl --pred results/<model>/<set>-<key>/predictions.jsonl --what-if":
        Run("{python} -m evaluation score --ref data/qa_sample.jsonl "
            "--pred results/my-lora/qa_sample-*/predictions.jsonl --what-if", expect=r"^\s*strip_markdown\s+\d"),
    "python -m evaluation predict --adapter runs/adapters/my-lora --no-base --data test.jsonl --out submission.jsonl "
    "[--postprocess strip_markdown --postprocess fit=150]":
        Run("{python} -m evaluation predict --adapter runs/adapters/my-lora --no-base "
            "--data data/mc_sample_competition.jsonl --out submission.jsonl --postprocess strip_markdown "
            "--postprocess fit=150 --max-new-tokens 8", expect=r"^my-lora: 32 answers in submission\.jsonl"),
    "python -m evaluation check --test test.jsonl --pred submission.jsonl":
        Run("{python} -m evaluation check --test data/mc_sample_competition.jsonl --pred submission.jsonl",
            expect=r"^Exit status 0"),
    # --- Fine-tune
    "python -m finetune preview --data data/train_sample.jsonl --model demo":
        Run("{python} -m finetune preview --data data/train_sample.jsonl --model demo",
            expect=r"120 rows read, 120 kept, 0 rejected"),
    "python -m finetune train --model demo --data data/train_sample.jsonl":
        Run("{python} -m finetune train --model demo --data data/train_sample.jsonl --max-steps 2 --job-id readme-1",
            expect=r"^completed: .*runs/adapters/"),
    "python -m finetune train --config run.yaml":
        # run.yaml is what the Fine-tune tab's "Show command" shows, saved whole (written by the test first)
        Run("{python} -m finetune train --config run.yaml --job-id readme-2", expect=r"^completed: "),
    "python -m finetune train --resume JOB_ID":
        # a finished job has nothing to continue: refused with the job named (a stopped one is resumed in
        # tests/test_finetune_train.py)
        Run("{python} -m finetune train --resume {job}", rc=2, expect=r"already completed"),
    "python -m finetune jobs ; python -m finetune stop JOB_ID":
        Run("{python} -m finetune jobs ; {python} -m finetune stop {job}", expect=r"^readme-1\s+completed"),
    "python -m finetune merge --adapter NAME --out merged/":
        Run("{python} -m finetune merge --adapter {adapter} --out merged/ && test -s merged/config.json",
            expect=r"merged model saved to"),
    "python -m finetune train --config run.yaml --processes 4":
        Skip("4 training processes; data parallel on 2 processes is tests/test_finetune_distributed.py"),
    "torchrun --nproc_per_node 4 -m finetune train --config run.yaml":
        Skip("4 training processes; data parallel on 2 processes is tests/test_finetune_distributed.py"),
    "accelerate launch --multi_gpu --num_processes 4 -m finetune train --config run.yaml":
        Skip("needs several GPUs (--multi_gpu)"),
    # --- Training with evaluation sets
    "python -m finetune train --model demo --data data/train_sample.jsonl --eval-data data/mc_sample.jsonl "
    "data/qa_sample.jsonl --eval-every 20 --eval-limit 32 --select-by accuracy:mc_sample --early-stop 3":
        Run("{python} -m finetune train --model demo --data data/train_sample.jsonl --eval-data data/mc_sample.jsonl "
            "data/qa_sample.jsonl --eval-every 20 --eval-limit 4 --select-by accuracy:mc_sample --early-stop 3 "
            "--max-steps 2 --eval-max-new-tokens 8 --job-id readme-3", expect=r"best accuracy:mc_sample="),
    "python -m finetune compare runs/jobs/RUN1 runs/jobs/RUN2 [--metric rouge-l:qa_sample] [--chart runs.png]":
        Run("{python} -m finetune compare runs/jobs/readme-3 runs/jobs/readme-1 --metric rouge-l:qa_sample "
            "--chart runs.png && test -s runs.png", expect=r"^readme-3\s"),
    # --- Presets
    "python -m finetune presets": Run("{python} -m finetune presets", expect=r"^demo-lora\s+demo\s+LoRA"),
    "python -m finetune presets copy qwen2.5-1.5b-qlora run.yaml && python -m finetune train --config run.yaml":
        # the copy only: training Qwen2.5-1.5B with QLoRA needs the network and CUDA
        Run("{python} -m finetune presets copy qwen2.5-1.5b-qlora preset.yaml && grep -q 'load_in_4bit: true' "
            "preset.yaml", expect=r"^wrote preset\.yaml"),
    # --- Chat
    "python -m chat --model demo --adapter NAME [--adapter OTHER ...] [--compare]":
        # the interactive loop, fed two lines on stdin
        Run("{python} -m chat --model demo --adapter {adapter} --compare --max-new-tokens 8",
            stdin="头痛怎么办？\n/exit\n", expect=r"^=== {adapter} ===$"),
    'python -m chat --model demo --adapter NAME --compare --prompt "高血压患者饮食要注意什么？"':
        Run('{python} -m chat --model demo --adapter {adapter} --compare '
            '--prompt "高血压患者饮食要注意什么？" --max-new-tokens 8', expect=r"^=== {adapter} ===$"),
    # --- Evaluate
    "python -m evaluation run --model demo [--adapter NAME ...] --data data/mc_sample.jsonl --data "
    "data/qa_sample.jsonl --out results/ [--method likelihood|generate] [--batch-size N] [--limit N] "
    "[--shots K --shots-data dev.jsonl] [--long-items truncate|skip]":
        Run("{python} -m evaluation run --model demo --adapter {adapter} --data data/mc_sample.jsonl "
            "--data data/qa_sample.jsonl --out results/ --method likelihood --batch-size 4 --limit 4 "
            "--max-new-tokens 8 --long-items truncate && ls results/demo/*/report.json", expect=r"accuracy|rouge"),
    # --- Hosting on a shared server
    "python -m hosting.users add admin --role admin":
        Run("{python} -m hosting.users add admin --role admin --password-stdin", stdin=PW + "\n",
            expect=r"admin"),
    "python -m hosting.users add alice --role member":
        Run("{python} -m hosting.users add alice --role member --password-stdin", stdin=PW + "\n", expect=r"alice"),
    "python -m hosting.users add visitor --role guest":
        Run("{python} -m hosting.users add visitor --role guest --password-stdin", stdin=PW + "\n",
            expect=r"visitor"),
    "python -m hosting.users list ; python -m hosting.users remove visitor":
        Run("{python} -m hosting.users list ; {python} -m hosting.users remove visitor", expect=r"alice\s+member"),
    "python app.py --host 0.0.0.0": Server("{python} app.py --host 127.0.0.1 --port {port}"),
    "python -m hosting.users sessions [--user alice]":
        # alice signs in first (gradio_client's auth= posts to /login), so there is a session to list
        Run("{python} -c \"from gradio_client import Client; Client('{url}', auth=('alice', '{pw}'), verbose=False)\""
            " && {python} -m hosting.users sessions --user alice", expect=r"^\S+\talice\t"),
    "python -m hosting.users revoke SESSION_ID":
        Run("{python} -m hosting.users revoke --user alice", expect=r"^Ended 1 session of alice"),
    # --- Remote engines: each needs an OpenAI-compatible server (tests/test_vllm_engine.py runs a real vLLM)
    "python app.py --endpoint gpu=http://gpu-box:8000/v1": Skip("needs a served model at gpu-box (the network)"),
    "python app.py --endpoint deepseek=https://api.deepseek.com/v1 --endpoint-key deepseek=DEEPSEEK_API_KEY":
        Skip("needs the network and an API key"),
    'python -m chat --endpoint http://127.0.0.1:8000/v1 --model my-adapter --compare --prompt "头痛怎么办？"':
        Skip("needs an engine serving my-adapter on port 8000 (vLLM: tests/test_vllm_engine.py)"),
    "python -m evaluation run --endpoint http://127.0.0.1:8000/v1 --model my-adapter --model base --data val.jsonl "
    "--out results/": Skip("needs an engine serving my-adapter on port 8000 (vLLM: tests/test_vllm_engine.py)"),
    "python -m evaluation predict --endpoint http://127.0.0.1:8000/v1 --model my-adapter --data test.jsonl "
    "--out submission.jsonl": Skip("needs an engine serving my-adapter on port 8000 (vLLM: tests/test_vllm_engine.py)"),
    # --- Docker
    "docker build -t medtune .": Skip("needs Docker"),
    "docker run -d --name medtune -p 7860:7860 -v medtune-data:/data -e MEDTUNE_ADMIN_PASSWORD=change-me medtune":
        Skip("needs Docker"),
    "docker exec -it medtune python -m hosting.users add alice --role member": Skip("needs Docker"),
    "docker build -t medtune:cuda --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 "
    "--build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .": Skip("needs Docker, a GPU, the network"),
    "docker run -d --gpus all -p 7860:7860 -v medtune-data:/data -e MEDTUNE_ADMIN_PASSWORD=change-me "
    "-e MEDTUNE_MODEL=Qwen/Qwen2.5-0.5B-Instruct medtune:cuda": Skip("needs Docker, a GPU, the network"),
}
PYTHON_EXAMPLES: dict[str, object] = {
    'from gradio_client import Client\n'
    'client = Client("http://server:7860/", auth=("alice", "her password"))\n'
    'client.predict("mc_sample", None, None, "auto", "", api_name="/score_submission")':
        PythonExample(
            'from gradio_client import Client\n'
            'for mount in ("", "zh/"):  # the README says the same call works on /zh/\n'
            '    client = Client("{url}" + mount, auth=("alice", "{pw}"), verbose=False)\n'
            '    result = client.predict("mc_sample", None, None, "auto", "", api_name="/score_submission")\n'
            '    print(mount or "/", "ok", str(result)[:200].replace("\\n", " "))\n',
            expect=r"^zh/ ok "),
}


def readme_examples(text: str) -> list[tuple[str, int, str]]:
    """(kind, line number, example) for every bash command and python block of the README, in order."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(bash|python)\s*$", lines[i])
        i += 1
        if not fence:
            continue
        start, body = i, []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if fence.group(1) == "python":
            code = [re.sub(r"\s+#\s.*$", "", line).rstrip() for line in body]  # the key: code without comments
            out.append(("python", start + 1, "\n".join(code).strip()))
            continue
        command, first = "", None
        for n, line in enumerate(body, start + 1):
            line = re.sub(r"(^|\s+)#\s.*$|^#.*$", "", line).rstrip()  # a comment: `  # ...` or a whole line
            if not line.strip() and not command:
                continue
            first = first or n
            command += " " + line.strip()
            if command.endswith("\\"):
                command = command[:-1].rstrip()
                continue
            out.append(("bash", first, " ".join(command.split())))
            command, first = "", None
    return out


def test_every_readme_example_has_an_entry():
    examples = readme_examples(README.read_text(encoding="utf-8"))
    assert len(examples) > 20, "the README parser found too few commands"
    missing = [f"README.md line {n}: {text!r}" for kind, n, text in examples
               if text not in (PYTHON_EXAMPLES if kind == "python" else COMMANDS)]
    assert not missing, "README examples without an entry in tests/test_readme.py:\n" + "\n".join(missing)
    found = {text for _, _, text in examples}
    stale = [key for key in list(COMMANDS) + list(PYTHON_EXAMPLES) if key not in found]
    assert not stale, "entries for commands the README no longer has:\n" + "\n".join(stale)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: str, cwd: Path, env: dict, stdin: str | None) -> tuple[int, str]:
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, input=stdin or "", capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    return proc.returncode, proc.stdout + proc.stderr


def _start_server(cmd: str, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    port = re.search(r"--port (\d+)", cmd).group(1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{cmd} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if b"ok" in r.read():
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"{cmd}: /healthz did not answer within 120 s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the app and its workers, nothing else
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _write_show_command_config(work: Path) -> None:
    """run.yaml = the Fine-tune tab's "Show command" text saved whole (the README says the tab writes one)."""
    from finetune.config import TrainConfig
    from ui.finetune_tab import command_text

    cfg = TrainConfig(model="demo", data=str(ROOT / "data" / "train_sample.jsonl"), max_steps=2)
    text = command_text(cfg, work / "runs")
    (work / "run.yaml").write_text(text, encoding="utf-8")


def test_readme_examples_run(tmp_path, medtune_home, demo_model):
    work = tmp_path / "checkout"
    work.mkdir()
    (work / "data").symlink_to(ROOT / "data")
    (work / "app.py").symlink_to(ROOT / "app.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDTUNE_HOME": str(medtune_home), "HF_HUB_OFFLINE": "1"}
    for name in ("MEDTUNE_DATA_DIR", "MEDTUNE_USERS_FILE", "MEDTUNE_ADMIN_PASSWORD", "MEDTUNE_USERS", "MEDTUNE_MODEL"):
        env.pop(name, None)
    _write_show_command_config(work)
    fill = {"python": sys.executable, "job": "readme-1", "adapter": "", "port": str(_free_port()), "url": "",
            "pw": PW}
    failures, server = [], None
    try:
        for kind, line, text in readme_examples(README.read_text(encoding="utf-8")):
            entry = (PYTHON_EXAMPLES if kind == "python" else COMMANDS).get(text)
            if entry is None or isinstance(entry, Skip):
                continue  # a missing entry fails test_every_readme_example_has_an_entry
            if isinstance(entry, Server):
                server = _start_server(entry.cmd.format(**fill), work, env, tmp_path / "server.log")
                fill["url"] = f"http://127.0.0.1:{fill['port']}/"
                continue
            if isinstance(entry, PythonExample):
                cmd, want, rc_want = None, entry.expect, 0
                rc, output = _run(f"{sys.executable} -", work, env, entry.code.format(**fill))
            else:
                cmd, want, rc_want = entry.cmd.format(**fill), entry.expect.format(**fill), entry.rc
                rc, output = _run(cmd, work, env, entry.stdin)
            if rc != rc_want or not re.search(want, output, re.MULTILINE):
                failures.append(f"README.md line {line}: {text}\n  ran: {cmd or 'the python example'}\n"
                                f"  exit {rc} (want {rc_want}), want a line matching {want!r}; output:\n"
                                + output[-2500:])
            if text == "python -m finetune train --model demo --data data/train_sample.jsonl":  # the adapter reused
                found = re.search(r"^completed: .*runs/adapters/(\S+)$", output, re.MULTILINE)
                fill["adapter"] = found.group(1) if found else "missing"
    finally:
        if server is not None:
            _stop(server)
    assert not failures, "\n\n".join(failures)


# ---------------------------------------------------------------------------------------------------------------
# Commands written inline in the README's prose and tables (`python -m ...` in backticks, outside the fenced
# blocks): each one's target must exist, and every flag it names must be an option of that command (or of its
# subcommand), with a value among the flag's choices where it has a fixed set. The parsers are the commands' own,
# built in this process by running the command's entry point until it parses its arguments.

INLINE_EXTERNAL = {  # not our commands: their flags are their own
    "python -m pytest": "pytest's own options",
    "python -m sglang.launch_server": "SGLang's server (described from its documentation)",
    "pip install": "pip: installs from the network",
}


def readme_inline_commands(text: str) -> list[tuple[int, str]]:
    """(line, command) for every backticked `python ...`, `bash ...` or `pip ...` outside the fenced blocks."""
    found, fenced = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            found += [(n, m.group(1)) for m in re.finditer(r"`((?:python|bash|pip) [^`]*)`", line)]
    return found


class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__("parsed")
        self.parser = parser


def command_parser(target: str):
    """The argparse parser of `python -m MODULE` or `python SCRIPT.py`: its entry point is run as __main__ with
    parse_args stopped at the first call (before any work), so the parser is exactly the one a user meets."""
    import argparse
    import runpy
    from unittest import mock

    def stop(self, *args, **kwargs):
        raise _Parsed(self)

    module = target[3:] if target.startswith("-m ") else None
    saved = sys.argv[:]
    sys.argv = [target]
    try:
        with mock.patch.object(argparse.ArgumentParser, "parse_args", stop), \
                mock.patch.object(argparse.ArgumentParser, "parse_known_args", stop), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # runpy: `hosting.users` was imported already
            if module:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(str(ROOT / target), run_name="__main__")
    except _Parsed as parsed:
        return parsed.parser
    finally:
        sys.argv = saved
    raise AssertionError(f"python {target} did not parse any arguments")


def _subparsers(parser) -> dict:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _check_words(parser, words: list[str], where: str) -> list[str]:
    """Every -flag in `words` an option of `parser`, and a value among the flag's choices where it has them."""
    options = {o: a for a in parser._actions for o in a.option_strings}
    problems = []
    for i, word in enumerate(words):
        if not re.match(r"^--?[A-Za-z]", word):
            continue
        flag = word.split("=", 1)[0]
        action = options.get(flag)
        if action is None:
            problems.append(f"{where}: {flag} is not an option of {parser.prog}")
            continue
        value = word.split("=", 1)[1] if "=" in word else (words[i + 1] if i + 1 < len(words) else "")
        placeholder = not value or value.startswith("-") or value.isupper() or not action.choices
        if not placeholder and not all(v in map(str, action.choices) for v in value.split("|")):
            problems.append(f"{where}: {flag} {value}: not among {parser.prog} {flag}'s choices "
                            f"{sorted(map(str, action.choices))}")
    return problems


def inline_problems(text: str) -> list[str]:
    """What is wrong with the README's inline commands: a target that does not exist, a subcommand, flag or value
    its parser does not have."""
    import shlex

    parsers: dict[str, object] = {}
    problems = []
    for line, command in readme_inline_commands(text):
        for segment in re.split(r"\s+(?:;|&&|\|)\s+", command):
            where = f"README.md line {line}: `{segment}`"
            if any(segment.startswith(prefix) for prefix in INLINE_EXTERNAL):
                continue
            words = [w.strip("[]") for w in shlex.split(segment)]
            if words[0] == "bash":
                problems += [] if (ROOT / words[1]).is_file() else [f"{where}: no file {words[1]}"]
                continue
            if words[1] == "-m":
                target, rest = f"-m {words[2]}", words[3:]
                exists = (ROOT / words[2].replace(".", "/")).with_suffix(".py").is_file() or \
                    (ROOT / words[2].replace(".", "/") / "__main__.py").is_file()
            else:
                target, rest = words[1], words[2:]
                exists = (ROOT / target).is_file()
            if not exists:
                problems.append(f"{where}: no such command in the repository ({target})")
                continue
            if target not in parsers:
                parsers[target] = command_parser(target)
            parser, subs = parsers[target], _subparsers(parsers[target])
            if subs and rest and not rest[0].startswith("-"):
                names = rest[0].split("|")  # `python -m finetune preview|train`: each of them
                unknown = [n for n in names if n not in subs]
                if unknown:
                    problems.append(f"{where}: {'/'.join(unknown)} is not a subcommand of {parser.prog}")
                    continue
                for name in names:
                    problems += _check_words(subs[name], rest[1:], where)
            else:
                problems += _check_words(parser, rest, where)
    return problems


def test_readme_inline_commands_name_real_flags():
    text = README.read_text(encoding="utf-8")
    assert len(readme_inline_commands(text)) > 30, "the inline-command parser found too few commands"
    # The fenced commands that cannot run here (a GPU, a server, the network) get the same check of their flags.
    skipped = [f"`{cmd}`" for kind, _, cmd in readme_examples(text)
               if kind == "bash" and isinstance(COMMANDS.get(cmd), Skip)]
    problems = inline_problems(text) + inline_problems("\n".join(skipped))
    assert not problems, "README inline commands that do not match their command:\n" + "\n".join(problems)


def test_a_readme_edit_naming_a_missing_flag_fails():
    text = README.read_text(encoding="utf-8")
    assert "`python -m evaluation run --circular`" in text
    broken = text.replace("`python -m evaluation run --circular`", "`python -m evaluation run --circle`")
    assert any("--circle is not an option" in p for p in inline_problems(broken))
    wrong_value = text.replace("--lang en|zh`", "--lang en|fr`")
    assert any("--lang en|fr: not among" in p for p in inline_problems(wrong_value))
    gone = text.replace("`python -m finetune stop ID`", "`python -m finetune halt ID`")
    assert any("halt is not a subcommand" in p for p in inline_problems(gone))
    missing = text.replace("`bash tests/vllm_env.sh`", "`bash tests/no_such.sh`")
    assert any("no file tests/no_such.sh" in p for p in inline_problems(missing))
