"""Endpoints: OpenAI-compatible servers the admin names, from command-line flags and `<data dir>/endpoints.yaml`.

    python app.py --endpoint gpu=http://gpu-box:8000/v1 --endpoint-key deepseek=DEEPSEEK_API_KEY ...

`--endpoint-key NAME=ENV_VAR` names the environment variable holding the key: the key itself is never on a command
line, in a file of ours, a log, a report, a vote or the page. The file (re-read when it changes):

    endpoints:
      - name: gpu
        url: http://gpu-box:8000/v1
        key_env: GPU_API_KEY        # optional
        models: [base, my-adapter]  # optional; default: whatever the server's /v1/models lists
        timeout_s: 60               # optional
        retries: 3                  # optional

A file with an error keeps the last good list, and the error names the file, line and field. Users only pick from
these; nothing lets a user make the server call an address of their choosing.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from models.interface import ModelError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FIELDS = {"name", "url", "key_env", "models", "timeout_s", "retries"}


class EndpointError(ModelError):
    """An endpoint setting is wrong; the message names the flag, or the file, line and field."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    key_env: str | None = None  # the environment variable holding the key, never the key
    models: tuple[str, ...] = ()  # explicit served-model names; empty: read /v1/models
    timeout_s: float = 60.0
    retries: int = 3
    origin: str = field(default="flag", compare=False)  # "flag" or the file it came from


def check_url(url: str, where: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise EndpointError(f"{where}: {url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    if parsed.username or parsed.password:
        raise EndpointError(f"{where}: put no credentials in the URL; name an environment variable with "
                            "--endpoint-key NAME=ENV_VAR (or key_env in endpoints.yaml)")
    return url.rstrip("/")


def default_name(url: str) -> str:
    """A bare `--endpoint URL` is named after its host and port ("127.0.0.1-8000")."""
    parsed = urlparse(url)
    return re.sub(r"[^A-Za-z0-9_.-]", "-", parsed.netloc) or "remote"


def parse_endpoint_flags(endpoints: list[str], keys: list[str] = (), models: list[str] = ()) -> list[Endpoint]:
    """`--endpoint NAME=URL` (or a bare URL), `--endpoint-key NAME=ENV_VAR`; `models` (the CLIs' --model with one
    bare endpoint) become that endpoint's explicit model list."""
    found: dict[str, Endpoint] = {}
    for flag in endpoints:
        name, sep, url = flag.partition("=")
        if not sep or "://" in name:  # a bare URL ("http://..." has no "=" before "://")
            name, url = default_name(flag), flag
        where = f"--endpoint {flag}"
        if not NAME_RE.match(name):
            raise EndpointError(f"{where}: the name {name!r} must be letters, digits, '_', '.' or '-'")
        if name in found:
            raise EndpointError(f"{where}: endpoint {name!r} is given twice")
        found[name] = Endpoint(name, check_url(url, where))
    for flag in keys:
        name, sep, env = flag.partition("=")
        where = f"--endpoint-key {flag}"
        if not sep or not ENV_RE.match(env):
            raise EndpointError(f"{where}: expected NAME=ENV_VAR (the name of an environment variable holding the "
                                "key, never the key itself)")
        if name not in found:
            raise EndpointError(f"{where}: no --endpoint named {name!r}")
        found[name] = Endpoint(name, found[name].url, env)
    if models:
        if len(found) != 1:
            raise EndpointError("--model with --endpoint names a served model of one endpoint; give exactly one "
                                "--endpoint")
        [(name, only)] = found.items()
        found[name] = Endpoint(name, only.url, only.key_env, tuple(models))
    return list(found.values())


def parse_endpoints_file(path: Path, text: str) -> list[Endpoint]:
    """The endpoints of an endpoints.yaml text; an EndpointError names the file, line and field at fault."""
    import yaml

    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise EndpointError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if root is None:
        return []
    entries = _mapping_value(root, "endpoints", path)
    if entries is None:
        return []
    if not isinstance(entries, yaml.SequenceNode):
        raise EndpointError(f"{path}, line {entries.start_mark.line + 1}, field endpoints: expected a list")
    found: dict[str, Endpoint] = {}
    for node in entries.value:
        endpoint = _endpoint_from_node(node, path)
        if endpoint.name in found:
            raise EndpointError(f"{path}, line {node.start_mark.line + 1}, field name: endpoint {endpoint.name!r} "
                                "is listed twice")
        found[endpoint.name] = endpoint
    return list(found.values())


def _mapping_value(node, key: str, path: Path):
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise EndpointError(f"{path}, line {node.start_mark.line + 1}: expected a mapping with an 'endpoints' list")
    for k, v in node.value:
        if k.value == key:
            return v
    return None


def _endpoint_from_node(node, path: Path) -> Endpoint:
    import yaml

    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise EndpointError(f"{path}, line {line}: each endpoint is a mapping with name and url")
    values: dict = {}
    for key, value in node.value:
        at = f"{path}, line {key.start_mark.line + 1}, field {key.value}"
        if key.value not in FIELDS:
            hint = " (write key_env: THE_ENV_VAR; keys never go in this file)" if "key" in key.value else ""
            raise EndpointError(f"{at}: unknown field; known: {', '.join(sorted(FIELDS))}{hint}")
        data = yaml.safe_load(yaml.serialize(value))
        values[key.value] = (data, at)
    for required in ("name", "url"):
        if required not in values:
            raise EndpointError(f"{path}, line {line}, field {required}: missing")
    name, at = values["name"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise EndpointError(f"{at}: the name must be letters, digits, '_', '.' or '-', got {name!r}")
    url, at = values["url"]
    url = check_url(str(url), at)
    key_env, at = values.get("key_env", (None, ""))
    if key_env is not None and (not isinstance(key_env, str) or not ENV_RE.match(key_env)):
        raise EndpointError(f"{at}: the name of an environment variable (e.g. GPU_API_KEY), got {key_env!r}")
    models, at = values.get("models", ([], ""))
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise EndpointError(f"{at}: a list of served model names")
    timeout, at = values.get("timeout_s", (60.0, ""))
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise EndpointError(f"{at}: seconds between 0 and 3600, got {timeout!r}")
    retries, at = values.get("retries", (3, ""))
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise EndpointError(f"{at}: a whole number between 0 and 10, got {retries!r}")
    return Endpoint(name, url, key_env, tuple(models), float(timeout), retries, origin=str(path))


class EndpointsFile:
    """`<data dir>/endpoints.yaml`, re-read when it changes. A bad edit keeps the last good list (`error` says what
    is wrong, naming the file, line and field) so that a typo never takes every remote model away."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._good: list[Endpoint] = []
        self.error: str | None = None
        self._lock = threading.Lock()

    def current(self) -> list[Endpoint]:
        with self._lock:
            try:
                stat = self.path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                self._stamp, self._good, self.error = None, [], None
                return []
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    text = self.path.read_text(encoding="utf-8")
                    self._good, self.error = parse_endpoints_file(self.path, text), None
                except (EndpointError, OSError, UnicodeDecodeError) as exc:
                    self.error = str(exc)  # the last good list stays
            return list(self._good)


def merge_endpoints(flags: list[Endpoint], from_file: list[Endpoint]) -> list[Endpoint]:
    """The flags' endpoints first, then the file's; a name in both is the flag's (the command line is the most
    deliberate)."""
    named = {e.name for e in flags}
    return list(flags) + [e for e in from_file if e.name not in named]


def key_is_set(endpoint: Endpoint) -> bool:
    return endpoint.key_env is None or bool(os.environ.get(endpoint.key_env))
