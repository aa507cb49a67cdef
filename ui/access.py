"""The signed-in user of a request, and the role checks every tab applies before it does something."""

from __future__ import annotations

import gradio as gr

from hosting.roles import LOCAL_USER, User
from ui.context import AppContext
from ui.strings import t


def current_user(request: gr.Request | None, ctx: AppContext) -> User:
    """The request's user; the local admin when the app runs without logins."""
    name = getattr(request, "username", None) if request is not None else None
    if ctx.users is None or not name:
        return User(LOCAL_USER, "admin")
    return ctx.users.user(name) or User(name, "guest")  # removed from the users file since login: least rights


def session_key(request: gr.Request | None, ctx: AppContext) -> tuple[str, str]:
    """(user, browser session): the key of per-page state kept outside gr.State (a running chat's stop flag, the
    job a page follows). The user comes from the login; gradio's session hash, which the client chooses, only tells
    one user's pages apart (ui/guard.py refuses a hash to any other user)."""
    return current_user(request, ctx).name, getattr(request, "session_hash", None) or "anonymous"


def allowed(request: gr.Request | None, ctx: AppContext, action: str) -> bool:
    return ctx.policy.can(current_user(request, ctx), action)


def denied_text(user: User, action: str, lang: str) -> str:
    return t("access.denied", lang).format(user=user.name, role=user.role, action=t(f"access.action.{action}", lang))


def require(request: gr.Request | None, ctx: AppContext, action: str) -> User:
    """The user, or a gr.Error that says which role may do this."""
    user = current_user(request, ctx)
    if not ctx.policy.can(user, action):
        raise gr.Error(denied_text(user, action, ctx.lang), print_exception=False)
    return user


def gate_on_load(ctx: AppContext, action: str, buttons: list, note) -> None:
    """When the page loads, disable `buttons` for a user whose role may not do `action`, and say why in `note`.
    The handlers check again (require), so the API refuses too."""
    if ctx.users is None:  # no logins: the local admin may do everything
        return

    def apply(request: gr.Request):
        user = current_user(request, ctx)
        ok = ctx.policy.can(user, action)
        text = "" if ok else denied_text(user, action, ctx.lang)
        return [gr.update(interactive=ok) for _ in buttons] + [gr.update(value=text, visible=not ok)]

    # gr.on with no trigger and no inputs: on page load only (the Blocks being built, without reaching into gradio)
    gr.on(None, apply, None, [*buttons, note], api_visibility="private", show_progress="hidden",
          concurrency_limit=None)


def checked_model_ref(text, ctx: AppContext) -> str:
    """A model reference a user typed, if they may use it (hosting/model_refs.py: a hub id, or a directory under the
    admin's model roots); else a gr.Error that is the same whatever the reason, so it tells nothing about the disk."""
    from hosting.model_refs import ModelRefError, check_model_ref

    if ctx.users is None and ctx.model_roots is None:
        # No logins and no roots given: a single-user install (the local user is the admin of their own machine,
        # and app.py warns loudly when that is open to a network); any directory of theirs is theirs to name.
        return (text or "").strip() if isinstance(text, str) else str(text)
    try:
        return check_model_ref(text, ctx.allowed_model_roots(), always=("demo", ctx.model))
    except ModelRefError as exc:
        shown = ascii(exc.text[:80])
        raise gr.Error(t("access.bad_model_ref", ctx.lang).format(model=shown), print_exception=False) from None
