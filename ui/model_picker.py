"""The base-model picker of the Fine-tune tab: the curated catalog (models/catalog.py) with each model's size and
memory computed from its config numbers, whether it fits this machine's free memory now, whether it is cached;
any hub id or local folder may be typed instead. Presets of the chosen model fill the training settings.

Downloads (admins: they fill the server's disk) run in a child process with progress and cancel; offline the
picker says so and offers what is cached. Admins can delete a cached model.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pandas as pd

from finetune import presets
from hosting.resources import snapshot
from models import catalog
from models.catalog import ModelShape, memory_needed, parameters
from models.units import human_bytes
from ui.access import allowed, require
from ui.context import AppContext
from ui.jobs_tab import with_ctx
from ui.strings import t

_DOWNLOADS: dict[str, catalog.Download] = {}  # repo id -> its download; one per model for the whole server


def free_memory() -> tuple[str, int | None]:
    """("gpu" | "ram", free bytes now): the first GPU's free memory where there is one, else the machine's."""
    res = snapshot()
    if res.gpus:
        gpu = res.gpus[0]
        return "gpu", None if gpu.used_bytes is None else gpu.total_bytes - gpu.used_bytes
    return "ram", res.available_bytes


def _yes_no(value: bool | None, lang: str) -> str:
    return t("picker.unknown", lang) if value is None else t("picker.yes" if value else "picker.no", lang)


def catalog_frame(lang: str) -> pd.DataFrame:
    """One row per curated model: parameters, memory in bf16 and 4-bit, fits now, cached."""
    where, free = free_memory()
    cached = catalog.cached_models()
    rows = []
    for model in catalog.load_catalog():
        # NF4 needs CUDA: without a GPU only bf16 can fit now, but the 4-bit figure still helps plan a GPU machine
        quant = "bf16" if where == "ram" or catalog.fits(model, "bf16", free) else "4bit"
        rows.append({t("picker.col_model", lang): model.id,
                     t("picker.col_params", lang): f"{parameters(model.shape)['total'] / 1e9:.2f} B",
                     t("picker.col_bf16", lang): human_bytes(memory_needed(model.shape, "bf16")),
                     t("picker.col_4bit", lang): human_bytes(memory_needed(model.shape, "4bit")),
                     t("picker.col_fits", lang): _yes_no(catalog.fits(model, quant, free), lang)
                     + ("" if quant == "bf16" else t("picker.fits_in_4bit", lang)),
                     t("picker.col_cached", lang): _yes_no(model.id in cached, lang)})
    return pd.DataFrame(rows)


def local_dir(model: str, ctx: AppContext | None) -> Path | None:
    """`model` as a local folder this user may name (hosting/model_refs.py: with logins or model roots, only inside
    the admin's roots), else None: the picker must not tell a user what exists elsewhere on the server's disk."""
    from hosting.model_refs import ModelRefError, check_model_ref

    try:
        if ctx is None or (ctx.users is None and ctx.model_roots is None):  # single user: their own machine
            return Path(model) if Path(model).is_dir() else None
        ref = check_model_ref(model, ctx.allowed_model_roots(), always=())
    except (ModelRefError, OSError, ValueError):
        return None
    return Path(ref) if Path(ref).is_dir() else None


def local_shape(model: str, folder: Path | None) -> ModelShape | None:
    """The shape of a local folder or a cached hub model, from its own config.json (None when unreadable)."""
    folder = folder or catalog.cached_path(model)
    try:
        return ModelShape.from_config(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (TypeError, OSError, ValueError, KeyError):
        return None


def model_info(model: str, lang: str, ctx: AppContext | None = None) -> str:
    """One paragraph about the chosen model: size, memory, fits, cached or how to get it."""
    model = (model or "").strip()
    if not model or model == "demo":
        return t("picker.demo", lang)
    known = {m.id: m for m in catalog.load_catalog()}
    folder = None if model in known else local_dir(model, ctx)
    shape = known[model].shape if model in known else local_shape(model, folder)
    where, free = free_memory()
    parts = [f"**{model}**"]
    if shape is None:
        parts.append(t("picker.size_unknown", lang))
    else:
        need = memory_needed(shape, "bf16")
        parts.append(t("picker.size", lang).format(params=f"{parameters(shape)['total'] / 1e9:.2f}",
                                                   bf16=human_bytes(need),
                                                   four=human_bytes(memory_needed(shape, "4bit"))))
        fits = None if free is None else need <= free
        key = "picker.fits" if fits else "picker.unknown_free" if fits is None else "picker.does_not_fit"
        parts.append(t(key, lang).format(where=t(f"picker.where_{where}", lang), free=human_bytes(free)))
    if folder is not None:
        parts.append(t("picker.local", lang))
    elif catalog.cached_path(model) is not None:
        parts.append(t("picker.cached", lang))
    else:
        parts.append(t("picker.offline" if catalog.hub_offline() else "picker.not_cached", lang))
    if known.get(model) and known[model].remote_code:
        parts.append(t("picker.remote_code", lang))
    if known.get(model) and known[model].gated:
        parts.append(t("picker.gated", lang))
    return " · ".join(parts)


def model_choices(ctx: AppContext) -> list[str]:
    """The server's model, the demo, the curated models, then anything else in the cache."""
    names = [ctx.model, "demo", *(m.id for m in catalog.load_catalog()), *catalog.cached_models()]
    return list(dict.fromkeys(names))


def preset_choices(model: str) -> list[str]:
    return [p.name for p in presets.for_model((model or "").strip())]


def download_status(model: str, lang: str) -> str:
    """The chosen model's download: progress, done, cancelled or failed (with the reason); "" when none."""
    download = _DOWNLOADS.get((model or "").strip())
    if download is None:
        return ""
    state = download.state()
    if state == "running":
        progress = download.progress()
        done = human_bytes(download.done_bytes())
        if progress is None:
            return t("picker.downloading", lang).format(done=done)
        return (t("picker.downloading_of", lang).format(done=done, total=human_bytes(download.expected_bytes),
                                                       pct=f"{100 * progress:.0f}")
                + f"\n\n<progress value='{progress:.3f}' max='1' style='width:100%'></progress>")
    if state == "failed":
        if lang != "en":  # the hub library's English is no use on /zh/: the failure's kind, said in the page's language
            return t("picker.download_failed", lang).format(reason=t(f"picker.download_{download.error_code()}", lang))
        return t("picker.download_failed", lang).format(reason=download.error()[:300])
    return t(f"picker.download_{state}", lang)


def downloading(model: str) -> bool:
    """Whether the chosen model's download is running now (what enables its Cancel button)."""
    download = _DOWNLOADS.get((model or "").strip())
    return download is not None and download.state() == "running"


def start_download(model: str, request: gr.Request, ctx: AppContext) -> str:
    require(request, ctx, "manage_models")
    model = (model or "").strip()
    if catalog.hub_offline():
        raise gr.Error(t("picker.offline", ctx.lang), print_exception=False)
    if not model or "/" not in model or local_dir(model, ctx) is not None:
        raise gr.Error(t("picker.need_hub_id", ctx.lang), print_exception=False)
    running = _DOWNLOADS.get(model)
    if running is None or running.state() != "running":
        _DOWNLOADS[model] = catalog.Download(model, expected_bytes=catalog.repo_size(model))
    return download_status(model, ctx.lang)


def cancel_download(model: str, request: gr.Request, ctx: AppContext) -> str:
    require(request, ctx, "manage_models")
    download = _DOWNLOADS.get((model or "").strip())
    if download is not None:
        download.cancel()
    return download_status(model, ctx.lang)


def delete_model(model: str, request: gr.Request, ctx: AppContext) -> str:
    require(request, ctx, "manage_models")
    model = (model or "").strip()
    download = _DOWNLOADS.get(model)
    if download is not None and download.state() == "running":
        raise gr.Error(t("picker.delete_running", ctx.lang), print_exception=False)
    freed = catalog.delete_cached(model)
    key = "picker.deleted" if freed else "picker.not_cached_here"
    return t(key, ctx.lang).format(model=model, freed=human_bytes(freed))


def preset_values(name: str, widgets: dict) -> list:
    """The preset's settings for the form's widgets (in `widgets` order); nothing changes without a preset."""
    if not name:
        return [gr.update() for _ in widgets]
    config = presets.get(name).config
    values = []
    for field in widgets:
        value = getattr(config, field)
        values.append("\n".join(value) if isinstance(value, list) else value)
    return values


def build(ctx: AppContext):
    """The picker's column (call inside a gr.Row); returns the model box, whose value is the model reference.
    `build_catalog` adds the table below the row, `wire_presets` connects presets to the settings."""
    lang = ctx.lang
    with gr.Column(scale=2):
        model = gr.Dropdown(model_choices(ctx), value=ctx.model, allow_custom_value=True, filterable=True,
                            label=t("finetune.model", lang), elem_id="picker-model")
        info = gr.Markdown(model_info(ctx.model, lang, ctx), elem_id="picker-info")
        preset = gr.Dropdown(preset_choices(ctx.model), value=None, label=t("picker.presets", lang),
                             elem_id="picker-preset", visible=bool(preset_choices(ctx.model)))
    model.preset = preset  # for wire_presets

    def on_model(name):
        choices = preset_choices(name)
        return model_info(name, lang, ctx), gr.update(choices=choices, value=None, visible=bool(choices))

    model.change(on_model, model, [info, preset], api_name="picker_info", show_progress="hidden")
    return model


def build_catalog(ctx: AppContext, model) -> None:
    """The catalog table with the admin's download / cancel / delete, full width below the model row."""
    lang = ctx.lang
    with gr.Accordion(t("picker.catalog", lang), open=False, elem_id="picker-catalog") as accordion:
        table = gr.Dataframe(interactive=False, wrap=True)
        gr.Markdown(t("picker.offline_note" if catalog.hub_offline() else "picker.online_note", lang))
        with gr.Row(visible=ctx.users is None) as admin_row:
            download = gr.Button(t("picker.download", lang), interactive=not catalog.hub_offline(), size="sm")
            cancel = gr.Button(t("picker.cancel", lang), variant="stop", size="sm", interactive=False)
            delete = gr.Button(t("picker.delete", lang), size="sm")
        status = gr.Markdown(elem_id="picker-status")
    accordion.expand(lambda: catalog_frame(lang), None, table, api_name="picker_catalog", show_progress="hidden")
    # Cancel is live only while the chosen model downloads: after each click (a private .then, so the public
    # events keep their one output) and on the timer that refreshes the status.
    def status_and_cancel(name):
        return download_status(name, lang), gr.update(interactive=downloading(name))

    model.change(status_and_cancel, model, [status, cancel], api_visibility="private", show_progress="hidden")
    for button, handler, api_name in ((download, start_download, "picker_download"),
                                      (cancel, cancel_download, "picker_cancel"),
                                      (delete, delete_model, "picker_delete")):
        button.click(with_ctx(handler, ctx), model, status, api_name=api_name).then(
            lambda name: gr.update(interactive=downloading(name)), model, cancel, api_visibility="private",
            show_progress="hidden")
    gr.Timer(2.0).tick(status_and_cancel, model, [status, cancel], api_visibility="private",
                       show_progress="hidden", queue=False)

    def admin_only(request: gr.Request):
        return gr.update(visible=allowed(request, ctx, "manage_models"))

    if ctx.users is not None:
        gr.context.Context.root_block.load(admin_only, None, admin_row, api_visibility="private",
                                           show_progress="hidden")


def wire_presets(model, widgets: dict) -> None:
    """Choosing a preset fills every training setting of the form with the preset's (the adapter name stays)."""
    fields = {name: widget for name, widget in widgets.items() if name != "adapter_name"}
    model.preset.change(lambda name: preset_values(name, fields), model.preset, list(fields.values()),
                        api_name="picker_preset", show_progress="hidden")
