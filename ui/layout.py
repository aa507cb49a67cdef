"""Builds the whole app: one gr.Tab per module under ui/, in the order users need them."""

from __future__ import annotations

import html

import gradio as gr

from ui import chat_tab, evaluate_tab, finetune_tab, footer, jobs_tab, score_tab
from ui.access import current_user
from ui.context import AppContext, with_services
from ui.errors import guard_handlers
from ui.strings import t


# Page-wide CSS (ui/server.py mounts the app with it). A checkbox in a row of settings gets the room of two fields:
# gradio sizes it to its box, which cut its label off ("4 比特（QLo… 仅 CU"). On a phone the blind test stacks.
PAGE_CSS = """
.setting-checkbox { min-width: 190px !important; flex-grow: 2 !important; }
@media (max-width: 640px) {  /* phones: the blind test's two answers one above the other, full width */
  #blind-panes { flex-direction: column !important; }
  #blind-panes > * { min-width: 100% !important; }
}
"""


def header_bar(ctx: AppContext, switch_href: str | None, logout_href: str | None,
               request: gr.Request | None = None, logout_token: str | None = None) -> str:
    """The language switch, and with logins on the signed-in user and log-out; relative links (see
    ui/server.py), so they work under a reverse proxy's sub-path too. With the session's CSRF token, log-out is a
    button posting it (a GET does not log out); without one, a link to the page that asks."""
    parts = []
    if switch_href:
        parts.append(f'<a id="lang-switch" href="{html.escape(switch_href)}">{t("server.switch", ctx.lang)}</a>')
    if ctx.users is not None and request is not None:
        user = current_user(request, ctx)
        parts.append(t("server.signed_in_as", ctx.lang).format(user=html.escape(user.name),
                                                               role=t(f"server.role.{user.role}", ctx.lang)))
        if logout_href and logout_token:
            parts.append(f'<form method="post" action="{html.escape(logout_href)}" style="display:inline">'
                         f'<input type="hidden" name="csrf" value="{html.escape(logout_token)}">'
                         f'<button id="log-out" type="submit">{t("server.log_out", ctx.lang)}</button></form>')
        elif logout_href:
            parts.append(f'<a id="log-out" href="{html.escape(logout_href)}">{t("server.log_out", ctx.lang)}</a>')
    return f'<div id="header-bar" style="text-align:right">{" · ".join(parts)}</div>'


def build_app(ctx: AppContext, switch_href: str | None = None, logout_href: str | None = None,
              open_warning: bool = False, logout_token=None) -> gr.Blocks:
    """The app; ui/server.py passes the header links, `logout_token(request)` (the log-out button's CSRF token)
    and whether to warn that it is open to the network."""
    ctx = with_services(ctx)  # app.py built them already; a bare context (tests) gets its own here, once
    # gradio keeps every upload and download in its cache; on a long-running server, files older than a day go
    # (uploads a job needs are copied under the data dir when it is submitted).
    with gr.Blocks(title=t("app.title", ctx.lang), delete_cache=(3600, 86400)) as app:
        if switch_href or ctx.users is not None:
            bar = gr.HTML(header_bar(ctx, switch_href, None))
            if ctx.users is not None:  # the user is known per request only

                def signed_in_bar(request: gr.Request) -> str:
                    token = logout_token(request) if logout_token is not None else None
                    return header_bar(ctx, switch_href, logout_href, request, token)

                app.load(signed_in_bar, None, bar, api_visibility="private", concurrency_limit=None,
                         show_progress="hidden")
        gr.Markdown(f"# {t('app.title', ctx.lang)}\n{t('app.subtitle', ctx.lang)}")
        if open_warning:
            gr.Markdown(t("server.open_warning", ctx.lang), elem_id="open-warning")
        if ctx.is_demo_model:
            gr.Markdown(t("app.demo_model_note", ctx.lang), elem_id="demo-model-note")
        with gr.Tabs():
            with gr.Tab(t("score.tab", ctx.lang), id="score"):
                score_tab.build(ctx)
            with gr.Tab(t("finetune.tab", ctx.lang), id="finetune"):
                finetune_tab.build(ctx)
            with gr.Tab(t("chat.tab", ctx.lang), id="chat"):
                chat_tab.build(ctx)
            with gr.Tab(t("evaluate.tab", ctx.lang), id="evaluate"):
                evaluate_tab.build(ctx)
            with gr.Tab(t("jobs.tab", ctx.lang), id="jobs"):
                jobs_tab.build(ctx)
        footer.build(ctx)
    return guard_handlers(app, ctx.lang)  # unexpected errors show a request id, never their text (ui/errors.py)
