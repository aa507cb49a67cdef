"""The footer every user sees: memory and GPU use, the models in memory (with the budget), and the job queue.

Refreshed by a gr.Timer every few seconds; `/footer` gives the same text to API clients.
"""

from __future__ import annotations

import gradio as gr

from chat.registry import human_bytes, shared_registry
from hosting.resources import snapshot
from ui.context import AppContext
from ui.strings import t

REFRESH_S = 5.0
# Browser-side: ask the footer for a refresh now (chained after a chat answer, which may have loaded the base).
REFRESH_JS = "() => { document.querySelector('#footer-refresh')?.click(); }"


def _size(n: int | None, lang: str) -> str:
    return t("footer.unknown", lang) if n is None else human_bytes(n)


def memory_line(lang: str) -> str:
    res = snapshot()
    parts = [t("footer.memory", lang).format(app=_size(res.process_rss_bytes, lang),
                                             free=_size(res.available_bytes, lang),
                                             total=_size(res.total_bytes, lang))]
    for gpu in res.gpus:
        key = "footer.gpu" if gpu.used_bytes is not None else "footer.gpu_no_used"
        parts.append(t(key, lang).format(index=gpu.index, name=gpu.name, used=_size(gpu.used_bytes, lang),
                                         total=human_bytes(gpu.total_bytes), app=human_bytes(gpu.process_bytes)))
    return " · ".join(parts)


def models_line(ctx: AppContext) -> str:
    """Loaded models by name (not by recency: that order would tell blind-test users which models just answered)."""
    lang, registry = ctx.lang, shared_registry(ctx.model, ctx.data_dir)
    loaded = sorted((m for m in registry.models() if m.loaded), key=lambda m: (m.kind != "base", m.name))
    if loaded:
        items = [t("footer.model_item", lang).format(name=m.name, kind=t(f"chat.kind_{m.kind}", lang),
                                                     size=human_bytes(m.bytes)) for m in loaded]
        line = t("footer.models", lang).format(models=", ".join(items))
    else:
        line = t("footer.models_none", lang)
    if registry.memory_budget_bytes is not None:
        used = sum(m.bytes for m in loaded)
        line += " · " + t("footer.budget", lang).format(used=human_bytes(used),
                                                        budget=human_bytes(registry.memory_budget_bytes))
    if registry.unloads:
        last = registry.unloads[-1]
        line += " · " + t("footer.last_unload", lang).format(name=last.name,
                                                             reason=t(f"models.reason_{last.reason}", lang))
    return line


def jobs_line(ctx: AppContext) -> str:
    """Running / queued training and evaluation jobs."""
    states = [job.state for job in ctx.jobs.store.active()]
    return t("footer.jobs", ctx.lang).format(running=states.count("running"), queued=states.count("queued"))


def footer_text(ctx: AppContext) -> str:
    return "  \n".join([memory_line(ctx.lang), models_line(ctx), jobs_line(ctx)])


def build(ctx: AppContext) -> None:
    def refresh() -> str:
        return footer_text(ctx)

    box = gr.Markdown(refresh, elem_id="footer")  # a callable value: computed again on every page load
    timer = gr.Timer(REFRESH_S)
    # Outside the queue: a status poll must answer at once even while every worker is busy generating.
    timer.tick(refresh, None, box, api_name="footer", show_progress="hidden", queue=False)
    poke = gr.Button(visible="hidden", elem_id="footer-refresh")  # clicked by REFRESH_JS, never by a person
    poke.click(lambda: footer_text(ctx), None, box, api_visibility="private", show_progress="hidden", queue=False)
