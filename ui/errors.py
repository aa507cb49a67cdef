"""What the page shows when a handler fails unexpectedly: a short request id, never the exception's text.

The exception text of an unexpected failure can hold server paths, other users' data or library internals, so it
goes to the server log only, with its traceback and the same request id the page shows: a user reports the id,
the admin finds the traceback. Errors the backends write for users (a data file's line and field, a refused
setting) keep their message. `guard_handlers` wraps every event handler of an app once it is built, so a handler
added later is covered without remembering to.
"""

from __future__ import annotations

import functools
import inspect
import logging
import secrets

import gradio as gr
from gradio.exceptions import Error as PageError

from models.preflight import PreflightError
from safeio.problems import MESSAGES, ProblemError, render
from ui.strings import t

log = logging.getLogger("medtune.ui")


def unexpected(exc: BaseException, lang: str, where: str = "") -> gr.Error:
    """Log exc's traceback under a new request id; the gr.Error to raise says only that id."""
    request_id = secrets.token_hex(4)
    log.error("request %s: unexpected error in %s", request_id, where or "a handler", exc_info=exc)
    return gr.Error(t("error.unexpected", lang).format(request_id=request_id), print_exception=False)


def worker_error(exc, lang: str) -> gr.Error:
    """A safeio.worker.WorkerError (an upload over its memory or time limit) in the page's language: its figures
    said from ui/strings.py keys, the English page keeps the worker's own words."""
    params = getattr(exc, "params", None) or {}
    detail = str(exc)
    if lang != "en" and exc.kind == "timeout" and "seconds" in params:
        detail = t("safeio.detail_timeout", lang).format(**params)
    elif lang != "en" and exc.kind == "memory" and "memory_mb" in params:
        detail = t("safeio.detail_ended" if params.get("ended") else "safeio.detail_memory", lang).format(**params)
    elif lang != "en":
        detail = t("safeio.detail_crashed", lang)
    return gr.Error(t(f"safeio.worker_{exc.kind}", lang).format(detail=detail), print_exception=False)


def preflight_text(code: str, params: dict, lang: str) -> str:
    """A refused model's sentence ("preflight.<code>") in lang; a library's English `reason` becomes its `cause`."""
    if lang != "en" and params.get("cause"):
        params = {**params, "reason": t(f"preflight.cause_{params['cause']}", lang)}
    return t(f"preflight.{code}", lang).format(**params)


def job_error_text(error: str | None, problem: dict | None, lang: str) -> str:
    """A finished job's stored error (jobs.store: the English `error` and its `problem` {"code", "params"}) in
    lang: said from its code where it has one; else the English text, introduced as the backend's own words on a
    page in another language."""
    code, params = (problem or {}).get("code") or "", (problem or {}).get("params") or {}
    if lang != "en" and code.startswith("preflight."):
        try:
            return preflight_text(code.removeprefix("preflight."), params, lang)
        except (KeyError, IndexError, ValueError):
            pass  # a sentence that wants a value the job did not keep: the fallback below
    if lang != "en" and code.startswith("problem."):
        said = render(code.removeprefix("problem."), lang, {"message": error or "", **params})
        if said:
            return said
    if not error or lang == "en":
        return error or ""
    return t("error.backend_detail", lang).format(detail=error)


def backend_error(exc: Exception, lang: str, where: str = "") -> gr.Error:
    """A backend exception as the page shows it. One raised `from` another exception carries that exception's
    text (a library's message, a path), so it is treated as unexpected; one written for the user stands."""
    if isinstance(exc, PreflightError):  # a model refused before loading: its code and figures, in the page's language
        return gr.Error(preflight_text(exc.code, exc.params, lang), print_exception=False)
    if exc.__cause__ is not None:
        return unexpected(exc, lang, where)
    from ui.problems import problems_message  # ui.problems imports ui.strings only; kept lazy beside PreflightError's

    # A backend problem (safeio.problems: DataError, UsersError, a ProblemError) is said from its code, so the
    # Chinese page reads Chinese; the English page gets the same sentence the command lines print.
    problems = getattr(exc, "problems", None) or ([exc.problem] if getattr(exc, "problem", None) else [])
    if not problems and isinstance(exc, ProblemError):
        problems = [exc.at(None)]
    if problems and lang != "en":
        return gr.Error(problems_message(problems, lang, getattr(exc, "path", None)), print_exception=False)
    code = getattr(exc, "code", "")  # a coded refusal that is not a file's problem (EvalError, a queue's)
    coded = render(code, lang, {"message": str(exc), **(getattr(exc, "params", None) or {})}) \
        if lang != "en" and isinstance(code, str) and code in MESSAGES else None
    if coded:
        return gr.Error(coded, print_exception=False)
    if lang != "en":  # a backend sentence that has no code yet: say so in the page's language, then its words
        return gr.Error(t("error.backend_detail", lang).format(detail=exc), print_exception=False)
    return gr.Error(str(exc), print_exception=False)


def _guarded(fn, lang: str):
    where = getattr(fn, "__qualname__", repr(fn))
    # The wrapper keeps fn's kind (plain, coroutine, generator, async generator): gradio decides how to run and
    # stream a handler from it; functools.wraps keeps the signature gradio reads gr.Request and gr.Progress from.
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except PageError:
                raise
            except Exception as exc:
                raise unexpected(exc, lang, where) from None
    elif inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except PageError:
                raise
            except Exception as exc:
                raise unexpected(exc, lang, where) from None
    elif inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except PageError:
                raise
            except Exception as exc:
                raise unexpected(exc, lang, where) from None
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except PageError:
                raise
            except Exception as exc:
                raise unexpected(exc, lang, where) from None
    wrapper.__medtune_guarded__ = True
    return wrapper


def guard_handlers(app: gr.Blocks, lang: str) -> gr.Blocks:
    """Wrap every Python event handler of app (see the module docstring); returns app."""
    for block_fn in app.fns.values():
        fn = block_fn.fn
        if fn is not None and not getattr(fn, "__medtune_guarded__", False):
            block_fn.fn = _guarded(fn, lang)
    return app
