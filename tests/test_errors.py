"""ui/errors.py: every kind of handler (plain, generator, coroutine, async generator) shows a request id for an
unexpected error, never its text; gr.Error passes through; the log has the traceback under the same id."""
import logging
import re

import gradio as gr
import pytest
from gradio_client import Client

from ui.errors import backend_error, guard_handlers

SECRET = "/srv/medtune/users/alice/upload.jsonl"


def plain(text):
    raise KeyError(SECRET)


def generator(text):
    yield "first chunk"
    raise RuntimeError(SECRET)


async def coroutine(text):
    raise ValueError(SECRET)


async def async_generator(text):
    yield "first chunk"
    raise OSError(SECRET)


def curated(text):
    raise gr.Error("line 3, field 'output': the answer is not a string")


def wrapped(text):
    try:
        try:
            raise FileNotFoundError(SECRET)
        except FileNotFoundError as exc:  # as chat/registry.py wraps a failed load
            raise RuntimeError(f"cannot load the model: {exc}") from exc
    except RuntimeError as exc:  # as the Chat tab turns it into a page message
        raise backend_error(exc, "zh", "test") from None


@pytest.fixture(scope="module")
def guarded_app():
    with gr.Blocks() as app:
        box, out = gr.Textbox(), gr.Textbox()
        for fn in (plain, generator, coroutine, async_generator, curated, wrapped):
            gr.Button(fn.__name__).click(fn, box, out, api_name=fn.__name__)
    guard_handlers(app, "en")
    guard_handlers(app, "en")  # a second call wraps nothing twice
    app.queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url
    app.close()


@pytest.mark.parametrize("api", ["plain", "generator", "coroutine", "async_generator"])
def test_unexpected_errors_show_only_a_request_id(guarded_app, api, caplog):
    caplog.set_level(logging.ERROR, logger="medtune.ui")
    with pytest.raises(Exception) as error:
        Client(guarded_app, verbose=False).predict("x", api_name=f"/{api}")
    message = str(error.value)
    request_id = re.search(r"request id ([0-9a-f]{8})", message)
    assert request_id and SECRET not in message, message
    record = next(r for r in caplog.records if request_id.group(1) in r.getMessage())
    assert record.exc_info and SECRET in str(record.exc_info[1]) and api in record.getMessage()


def test_errors_written_for_users_pass_through(guarded_app):
    with pytest.raises(Exception) as error:
        Client(guarded_app, verbose=False).predict("x", api_name="/curated")
    assert "line 3, field 'output'" in str(error.value) and "request id" not in str(error.value)


def test_a_backend_error_that_wraps_another_is_unexpected(guarded_app):
    with pytest.raises(Exception) as error:
        Client(guarded_app, verbose=False).predict("x", api_name="/wrapped")
    assert "请求编号" in str(error.value) and SECRET not in str(error.value)  # in the page's language (zh)
