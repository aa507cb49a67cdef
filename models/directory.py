"""Every model this process can use, by name: the in-process base and adapters, and each endpoint's models.

Chat and Evaluate ask the directory, never a registry or a client directly: `listing()` for the grouped model list
(in-process first, then each endpoint with its models, or the reason it cannot list them), `model_for(name)` for
the ChatModel. Endpoints come from the admin's flags and `<data dir>/endpoints.yaml` (re-read when it changes);
an endpoint's models are its explicit list, or what its `/v1/models` lists (asked again after `list_ttl_s`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from models.interface import IN_PROCESS, ModelEntry, ModelError
from models.remote.client import ClientOptions, OpenAIClient, RemoteError
from models.remote.endpoints import Endpoint, EndpointsFile, merge_endpoints
from models.remote.model import RemoteModel, remote_name


_SHARED: dict[int, "ModelDirectory"] = {}
_SHARED_LOCK = threading.Lock()


def shared_directory(registry, endpoints: list[Endpoint] | None = None,
                     endpoints_file: Path | str | None = None) -> "ModelDirectory":
    """The one directory of a shared registry in this process (every tab and the job runner use it). The app's
    tabs pass the admin's endpoints; a caller that passes none (the job runner) gets what was configured."""
    with _SHARED_LOCK:
        directory = _SHARED.get(id(registry))  # shared registries live as long as the process
        if directory is None:
            directory = _SHARED[id(registry)] = ModelDirectory(registry, endpoints or [], endpoints_file)
        elif endpoints is not None:
            directory.flag_endpoints = list(endpoints)
            if endpoints_file is not None and directory.file is None:
                directory.file = EndpointsFile(endpoints_file)
        return directory


class ModelDirectory:
    def __init__(self, registry=None, endpoints: list[Endpoint] = (), endpoints_file: Path | str | None = None,
                 list_ttl_s: float = 30.0):
        self.registry = registry  # the in-process ModelRegistry, or None (remote models only)
        self.flag_endpoints = list(endpoints)
        self.file = EndpointsFile(endpoints_file) if endpoints_file is not None else None
        self.list_ttl_s = list_ttl_s
        self._clients: dict[Endpoint, OpenAIClient] = {}
        self._listed: dict[Endpoint, tuple[float, list[dict] | RemoteError]] = {}
        self._models: dict[tuple[Endpoint, str], RemoteModel] = {}
        self._lock = threading.RLock()  # model_for holds it while _client takes it again

    @property
    def base_name(self) -> str | None:
        return self.registry.base_name if self.registry is not None else None

    @property
    def file_error(self) -> str | None:
        """What is wrong with endpoints.yaml now (the last good list is in use), for the admin."""
        return self.file.error if self.file is not None else None

    def endpoints(self) -> list[Endpoint]:
        return merge_endpoints(self.flag_endpoints, self.file.current() if self.file is not None else [])

    def _client(self, endpoint: Endpoint) -> OpenAIClient:
        with self._lock:
            if endpoint not in self._clients:  # an edited endpoint (new URL, key variable, timeout) gets a new one
                options = ClientOptions(timeout_s=endpoint.timeout_s, retries=endpoint.retries)
                self._clients[endpoint] = OpenAIClient(endpoint.url, endpoint.key_env, options, label=endpoint.name)
            return self._clients[endpoint]

    def served(self, endpoint: Endpoint) -> list[dict]:
        """The endpoint's models ({"id", "parent"?}): its explicit list, or /v1/models (cached `list_ttl_s`)."""
        if endpoint.models:
            return [{"id": m} for m in endpoint.models]
        now = time.monotonic()
        cached = self._listed.get(endpoint)
        if cached is None or now - cached[0] > self.list_ttl_s:
            try:
                result: list[dict] | RemoteError = self._client(endpoint).models()
            except RemoteError as exc:
                result = exc
            cached = self._listed[endpoint] = (now, result)
        if isinstance(cached[1], RemoteError):
            raise cached[1]
        return cached[1]

    def listing(self) -> list[ModelEntry]:
        """In-process models first (the base, then adapters), then each endpoint's; an endpoint that cannot list
        its models shows as one unusable entry with the reason."""
        entries: list[ModelEntry] = []
        if self.registry is not None:
            for m in self.registry.models():
                entries.append(ModelEntry(m.name, IN_PROCESS, m.kind, m.name, m.compatible, m.reason, m.decoding))
        for endpoint in self.endpoints():
            try:
                served = self.served(endpoint)
            except RemoteError as exc:
                entries.append(ModelEntry(f"@{endpoint.name}", endpoint.name, "remote", f"@{endpoint.name}",
                                          False, str(exc)))
                continue
            for m in served:
                parent = f" (adapter of {m['parent']})" if m.get("parent") and m["parent"] != m["id"] else ""
                name = remote_name(m["id"], endpoint.name)
                entries.append(ModelEntry(name, endpoint.name, "remote", f"{m['id']}{parent}"))
        return entries

    def usable_models(self) -> list[str]:
        return [e.name for e in self.listing() if e.compatible]

    def where(self, name: str) -> str:
        """Where a model runs: IN_PROCESS or its endpoint's name (for votes and reports)."""
        return name.rpartition("@")[2] if self._is_remote(name) else IN_PROCESS

    def _is_remote(self, name: str | None) -> bool:
        return bool(name) and "@" in name and name.rpartition("@")[2] in {e.name for e in self.endpoints()}

    def model_for(self, name: str | None):
        """The ChatModel of a listed name (None: the in-process base)."""
        if not self._is_remote(name):
            if self.registry is None:
                raise ModelError(f"unknown model {name!r}: no in-process model here, and no endpoint named "
                                 f"{(name or '').rpartition('@')[2]!r}")
            return self.registry.model_for(name)
        served, _, endpoint_name = name.rpartition("@")
        endpoint = next(e for e in self.endpoints() if e.name == endpoint_name)
        listed = {m["id"]: m for m in self.served(endpoint)}
        if served not in listed:
            raise ModelError(f"{endpoint_name}: the server lists no model {served!r}; it lists "
                             f"{', '.join(listed) or 'none'}")
        with self._lock:
            key = (endpoint, served)
            if key not in self._models:
                self._models[key] = RemoteModel(endpoint, served, self._client(endpoint), listed[served].get("parent"),
                                                  max_model_len=listed[served].get("max_model_len"))
            return self._models[key]
