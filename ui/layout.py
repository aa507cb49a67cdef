"""Builds the whole app: one gr.Tab per module under ui/, in the order users need them."""

from __future__ import annotations

import gradio as gr

from ui import chat_tab, evaluate_tab, finetune_tab, score_tab
from ui import footer
from ui.context import AppContext
from ui.strings import t


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title=t("app.title", ctx.lang)) as app:
        gr.Markdown(f"# {t('app.title', ctx.lang)}\n{t('app.subtitle', ctx.lang)}")
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
        footer.build(ctx)
    return app
