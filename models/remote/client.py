"""A small OpenAI-compatible HTTP client (httpx): chat completions plain and streamed (SSE), completions, models.

Why not the `openai` package: the app needs one error type whose message a pane can show (down, timeout, 401, 404,
429 after retries, malformed stream), bounded retries it controls, and no key ever in an exception or log line.

- One pooled `httpx.Client` per endpoint (keep-alive connections shared by every thread of the app).
- Timeouts: connecting, and the wait for each chunk of an answer (`timeout_s`), not the whole answer.
- Retries: a refused connection, a timeout before any answer, 429 and 5xx are retried `retries` times with
  exponential backoff (honouring Retry-After up to a bound); 400/401/403/404/422 are not (retrying cannot help).
  A stream that breaks after text has arrived is not retried: the pane would repeat itself.
- The key is read from the environment variable the admin named, at each request, and sent only as a header.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import httpx

from models.interface import ModelError
from models.settings import GenerationSettings

RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 10.0


class RemoteError(ModelError):
    """A remote model failed; `reason` is a short code the UI can translate (down, timeout, auth, unknown_model,
    rate_limited, server, malformed, refused, context: a prompt longer than the model's context)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ClientOptions:
    timeout_s: float = 60.0  # per read (the next chunk of a stream), and for connecting (capped at 10 s)
    retries: int = 3
    backoff_s: float = 0.5  # first wait; doubled each retry
    max_connections: int = 32


def request_body(model: str, settings: GenerationSettings) -> dict:
    """The sampling fields of a chat/completions request. Only standard fields unless a knob is set away from its
    default: `top_k`, `repetition_penalty` and `min_tokens` are vLLM/SGLang extensions that hosted APIs (and
    `transformers serve`) refuse, so they are sent only when asked for."""
    body: dict = {"model": model, "max_tokens": settings.max_new_tokens, "temperature": settings.temperature}
    if not settings.greedy:
        body.update(top_p=settings.top_p, seed=settings.seed)
        if settings.top_k:
            body["top_k"] = settings.top_k
    if settings.repetition_penalty != 1.0:
        body["repetition_penalty"] = settings.repetition_penalty
    if settings.min_new_tokens:
        body["min_tokens"] = settings.min_new_tokens
    return body


class OpenAIClient:
    def __init__(self, base_url: str, key_env: str | None = None, options: ClientOptions = ClientOptions(),
                 label: str = ""):
        self.base_url = base_url.rstrip("/")
        self.key_env, self.options = key_env, options
        self.label = label or self.base_url  # how errors name this endpoint (never with the key)
        timeout = httpx.Timeout(options.timeout_s, connect=min(options.timeout_s, 10.0))
        limits = httpx.Limits(max_connections=options.max_connections,
                              max_keepalive_connections=options.max_connections)
        self._http = httpx.Client(timeout=timeout, limits=limits, follow_redirects=False)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        key = os.environ.get(self.key_env) if self.key_env else None
        if self.key_env and not key:
            raise RemoteError("auth", f"{self.label}: the environment variable {self.key_env} that should hold this "
                                      "endpoint's key is not set")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _url(self, path: str) -> str:
        """"/v1/x" is the OpenAI API under the base URL (which, as the openai SDK's, includes the "/v1"); any other
        path is at the server's root (vLLM's /tokenize, /health, /v1/load_lora_adapter's siblings)."""
        if path.startswith("/v1/"):
            return self.base_url + path[3:]
        return self.base_url.removesuffix("/v1") + path

    # ---- requests ------------------------------------------------------------------------------------------
    def get(self, path: str) -> dict:
        return self._send("GET", path, None)

    def post(self, path: str, body: dict) -> dict:
        return self._send("POST", path, body)

    def _send(self, method: str, path: str, body: dict | None) -> dict:
        """One JSON request, retried on connection errors, timeouts, 429 and 5xx."""
        for attempt in range(self.options.retries + 1):
            try:
                response = self._http.request(method, self._url(path), json=body, headers=self._headers())
            except httpx.TransportError as exc:
                error = _transport_error(self.label, exc)
                if attempt < self.options.retries:
                    self._sleep(attempt, None)
                    continue
                raise error from None
            if response.status_code in RETRY_STATUS and attempt < self.options.retries:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            _raise_for_status(self.label, body, response.status_code, response.text)
            try:
                return response.json()
            except ValueError:
                raise RemoteError("malformed", f"{self.label}: {path} answered with something that is not JSON: "
                                               f"{response.text[:200]!r}") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        wait = self.options.backoff_s * (2 ** attempt)
        try:
            wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER_S)) if retry_after else wait
        except ValueError:
            pass  # an HTTP date: keep our own backoff
        time.sleep(wait)

    def models(self) -> list[dict]:
        """The served models (`/v1/models`'s `data`: each with `id`, and `parent` for a vLLM adapter)."""
        data = self.get("/v1/models").get("data")
        if not isinstance(data, list):
            raise RemoteError("malformed", f"{self.label}: /v1/models has no 'data' list")
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def chat(self, model: str, messages: list[dict], settings: GenerationSettings) -> str:
        reply = self.post("/v1/chat/completions", {**request_body(model, settings), "messages": messages})
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RemoteError("malformed", f"{self.label}: a chat completion without choices[0].message.content: "
                                           f"{json.dumps(reply)[:200]}") from None

    def stream_chat(self, model: str, messages: list[dict], settings: GenerationSettings,
                    stop: threading.Event | None = None) -> Iterator[str]:
        """The answer's pieces as they arrive (server-sent events). Retried only before the first piece."""
        body = {**request_body(model, settings), "messages": messages, "stream": True}
        for attempt in range(self.options.retries + 1):
            try:
                with self._http.stream("POST", self._url("/v1/chat/completions"), json=body,
                                       headers=self._headers()) as response:
                    if response.status_code in RETRY_STATUS and attempt < self.options.retries:
                        self._sleep(attempt, response.headers.get("retry-after"))
                        continue
                    if response.status_code >= 400:
                        text = response.read().decode(errors="replace")
                        _raise_for_status(self.label, body, response.status_code, text)
                    yield from self._events(response, stop)
                    return
            except httpx.TransportError as exc:
                if attempt < self.options.retries and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    self._sleep(attempt, None)
                    continue
                raise _transport_error(self.label, exc) from None

    def _events(self, response: httpx.Response, stop: threading.Event | None) -> Iterator[str]:
        finished = False
        for line in response.iter_lines():
            if stop is not None and stop.is_set():
                return
            if not line.strip() or line.startswith(":"):
                continue  # keep-alive comments and event separators
            if not line.startswith("data:"):
                continue  # "event:" / "id:" fields: the data lines carry the chunks
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
                if "error" in chunk:
                    raise RemoteError("server", f"{self.label}: the server reported an error mid-answer: "
                                                f"{str(chunk['error'])[:200]}")
                choice = chunk["choices"][0] if chunk.get("choices") else {}
                piece = (choice.get("delta") or {}).get("content")
            except (ValueError, KeyError, TypeError, AttributeError):
                raise RemoteError("malformed", f"{self.label}: malformed stream event: {data[:200]!r}") from None
            finished = finished or bool(choice.get("finish_reason"))
            if piece:
                yield piece
        if not finished:
            raise RemoteError("malformed", f"{self.label}: the stream ended before the answer did (no [DONE] and "
                                           "no finish_reason): the server closed the connection")


def _transport_error(label: str, exc: httpx.TransportError) -> RemoteError:
    if isinstance(exc, httpx.TimeoutException):
        return RemoteError("timeout", f"{label}: no answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return RemoteError("down", f"{label}: cannot connect (is the server running?)")
    return RemoteError("down", f"{label}: the connection broke ({type(exc).__name__}: {exc})")


def _raise_for_status(label: str, body: dict | None, status: int, text: str) -> None:
    if status < 400:
        return
    detail = text[:300]
    model = (body or {}).get("model")
    if status in (401, 403):
        raise RemoteError("auth", f"{label}: the server refused the key (HTTP {status}): {detail}")
    if status == 404:
        what = f"model {model!r}" if model else "this path"
        raise RemoteError("unknown_model", f"{label}: {what} not found (HTTP 404): {detail}")
    if status == 429:
        raise RemoteError("rate_limited", f"{label}: rate limited (HTTP 429) after retries: {detail}")
    if status >= 500:
        raise RemoteError("server", f"{label}: server error (HTTP {status}) after retries: {detail}")
    if status == 400 and re.search(r"context length|context window|too many tokens|max_model_len", text, re.I):
        # vLLM: "This model's maximum context length is N tokens..."; one long prompt, not the server, is at fault
        raise RemoteError("context", f"{label}: the prompt is longer than the model's context (HTTP 400): {detail}")
    raise RemoteError("refused", f"{label}: the server refused the request (HTTP {status}): {detail}")
