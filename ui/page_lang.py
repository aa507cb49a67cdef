"""The language of gradio's own widget texts ("Drop File Here", "Clear", "Loading...") on each mounted page.

Our strings are rendered on the server in the page's language (ui/strings.py), but gradio translates its built-in
component texts in the browser with svelte-i18n, from `navigator.language` alone (gradio 6.31: `setupi18n` in the
front end's core module picks `navigator.language` when it names one of its bundled languages, else English). So a
visitor whose browser is set to English would see English widgets on /zh/, and the reverse on /.

PageLanguage fixes the choice per page: on the HTML of each app page it puts a tiny inline script first in <head>
that makes `navigator.language(s)` report the page's language, before gradio's module scripts (deferred) run. The
page then renders gradio's bundled zh-CN (or en) texts whatever the browser's setting; the user can still switch in
gradio's settings panel.
"""

from __future__ import annotations

import json
from typing import Callable

# gradio's bundled translation files are named by these tags (gradio/templates/frontend/assets/zh-CN-*.js).
BROWSER_TAGS = {"en": "en", "zh": "zh-CN"}


# gradio 6.31 hard-codes a few English texts with no i18n key; on a Chinese page a MutationObserver rewrites them as
# they appear: the table search box's placeholders, and the status line it shows over a running event's outputs
# (statustracker: "processing |", "queue: 2/5 |", "from cache" / "used cache").
ZH_SCRIPT = """var w=%(placeholders)s;
var s=[[/^(\\s*)processing \\|/,'$1%(processing)s |'],[/^(\\s*)queue: /,'$1%(queue)s'],
[/^(\\s*)from cache/,'$1%(from_cache)s'],[/^(\\s*)used cache/,'$1%(used_cache)s']];
function text(n){var v=n.nodeValue;for(var i=0;i<s.length;i++){if(s[i][0].test(v)){n.nodeValue=v.replace(s[i][0],s[i][1]);return;}}}
function box(i){var r=w[i.placeholder];if(r)i.placeholder=r;}
function walk(n){if(n.nodeType===3){text(n);return;}if(n.nodeType!==1)return;
var t=document.createTreeWalker(n,NodeFilter.SHOW_TEXT);while(t.nextNode())text(t.currentNode);
if(n.matches('input.search-input'))box(n);n.querySelectorAll('input.search-input').forEach(box);}
new MutationObserver(function(records){records.forEach(function(m){
if(m.type==='childList')m.addedNodes.forEach(walk);else walk(m.target);});})
.observe(document.documentElement,{subtree:true,childList:true,characterData:true,attributes:true,
attributeFilter:['placeholder']});"""


def language_script(lang: str) -> str:
    from ui.strings import t

    tag = json.dumps(BROWSER_TAGS[lang])
    # On the instance, not the prototype: shadows the browser's getters for this page only.
    script = ("(function(){var l=" + tag + ";try{Object.defineProperty(navigator,'language',"
              "{get:function(){return l},configurable:true});Object.defineProperty(navigator,'languages',"
              "{get:function(){return [l]},configurable:true});}catch(e){}")
    if lang != "en":
        placeholders = {t(key, "en"): t(key, lang) for key in ("page.search", "page.filter")}
        script += ZH_SCRIPT % {"placeholders": json.dumps(placeholders, ensure_ascii=False),
                               "processing": t("page.processing", lang), "queue": t("page.queue", lang),
                               "from_cache": t("page.from_cache", lang), "used_cache": t("page.used_cache", lang)}
    return "<script>" + script + "})();</script>"


def inject(html: bytes, lang: str) -> bytes:
    """The page with the language script right after <head> (unchanged when there is no <head>)."""
    marker = b"<head>"
    at = html.find(marker)
    if at < 0:
        return html
    at += len(marker)
    return html[:at] + language_script(lang).encode() + html[at:]


class PageLanguage:
    """Plain ASGI middleware: rewrites the HTML of the app pages in `pages` (route path -> "en" | "zh"); every other
    response (the queue's event streams, files, the API) passes through untouched and unbuffered."""

    def __init__(self, app, pages: dict[str, str], route_path: Callable):
        self.app, self.pages, self.route_path = app, pages, route_path

    async def __call__(self, scope, receive, send):
        lang = (self.pages.get(self.route_path(scope))
                if scope["type"] == "http" and scope["method"] == "GET" else None)
        if lang is None:
            await self.app(scope, receive, send)
            return
        start: dict = {}
        body: list[bytes] = []

        async def send_page(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            headers = [(k, v) for k, v in start.get("headers", [])]
            content = b"".join(body)
            kind = dict(headers).get(b"content-type", b"")
            if kind.startswith(b"text/html") and start.get("status") == 200:
                content = inject(content, lang)
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(content)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": content})

        await self.app(scope, receive, send_page)
