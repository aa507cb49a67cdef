"""The Fine-tune tab's model picker (ui/model_picker.py) offline: sizes computed from config numbers, fits or not
against the free memory, cached or not in a real Hugging Face cache layout, a local folder's own config, presets
filling the form, downloads refused offline and deletion."""

from __future__ import annotations

import gradio as gr
import pytest
from huggingface_hub import constants

from tests.test_catalog import fake_hub_cache
from ui import model_picker
from ui.context import AppContext

GB = 2**30


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # huggingface_hub reads it at each call
    return cache


def free(monkeypatch, where: str, n: int | None) -> None:
    monkeypatch.setattr(model_picker, "free_memory", lambda: (where, n))


def test_a_catalog_model_fits_or_not_and_is_cached_or_not(hub_cache, monkeypatch):
    free(monkeypatch, "gpu", 24 * GB)
    info = model_picker.model_info("Qwen/Qwen2.5-7B-Instruct", "en")
    assert "7.62 B parameters" in info and "17.0 GiB to chat in bf16" in info and "6.2 GiB in 4-bit" in info
    assert "fits the free GPU memory (24.0 GiB)" in info
    assert "downloads are unavailable" in info  # HF_HUB_OFFLINE=1 in the tests
    free(monkeypatch, "gpu", 8 * GB)
    assert "does NOT fit the free GPU memory (8.0 GiB)" in model_picker.model_info("Qwen/Qwen2.5-7B-Instruct", "en")
    fake_hub_cache(hub_cache, "Qwen/Qwen2.5-7B-Instruct", {"config.json": b"{}", "model.safetensors": b"w" * 64})
    assert "downloaded ✓" in model_picker.model_info("Qwen/Qwen2.5-7B-Instruct", "en")
    zh = model_picker.model_info("Qwen/Qwen2.5-7B-Instruct", "zh")
    assert "bf16 下放不进当前空闲显存" in zh and "已下载" in zh
    free(monkeypatch, "ram", None)
    assert "free memory unknown" in model_picker.model_info("Qwen/Qwen3-0.6B", "en")


def test_the_catalog_table(hub_cache, monkeypatch):
    fake_hub_cache(hub_cache, "Qwen/Qwen3-0.6B", {"config.json": b"{}", "model.safetensors": b"w" * 64})
    free(monkeypatch, "gpu", 10 * GB)
    rows = {r["model"]: r for r in model_picker.catalog_frame("en").to_dict("records")}
    assert len(rows) == 12 and rows["Qwen/Qwen3-0.6B"]["downloaded"] == "yes"
    assert rows["Qwen/Qwen2.5-0.5B-Instruct"]["fits now"] == "yes"
    assert rows["Qwen/Qwen2.5-7B-Instruct"]["fits now"] == "yes (4-bit)"  # 17 GiB in bf16, 6.2 GiB in 4-bit
    assert rows["THUDM/glm-4-9b-chat-hf"]["fits now"] == "yes (4-bit)"
    free(monkeypatch, "gpu", 4 * GB)
    rows = {r["model"]: r for r in model_picker.catalog_frame("en").to_dict("records")}
    assert rows["Qwen/Qwen2.5-7B-Instruct"]["fits now"] == "no (4-bit)"
    rows = {r["模型"]: r for r in model_picker.catalog_frame("zh").to_dict("records")}
    assert rows["Qwen/Qwen2.5-7B-Instruct"]["当前可运行"] == "否（4 比特）"  # said in the page's language
    free(monkeypatch, "ram", 4 * GB)  # no GPU: fits is judged in bf16 only (NF4 needs CUDA); 4-bit still shown
    rows = {r["模型"]: r for r in model_picker.catalog_frame("zh").to_dict("records")}
    seven = rows["Qwen/Qwen2.5-7B-Instruct"]
    assert seven["显存（4 比特，仅 GPU）"].endswith("GiB") and seven["当前可运行"] == "否"


def test_a_local_folder_is_sized_from_its_own_config(tiny_chat_model, hub_cache, monkeypatch):
    import transformers

    free(monkeypatch, "ram", 64 * GB)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_chat_model)
    billions = sum(p.numel() for p in model.parameters()) / 1e9
    info = model_picker.model_info(str(tiny_chat_model), "en")
    assert f"{billions:.2f} B parameters" in info and "a local folder" in info
    assert "size unknown" in model_picker.model_info("someone/not-cached", "en")


def test_choices_and_presets(hub_cache):
    fake_hub_cache(hub_cache, "someone/extra", {"config.json": b"{}", "model.safetensors": b"w"})
    choices = model_picker.model_choices(AppContext(model="demo"))
    assert choices[0] == "demo" and "Qwen/Qwen2.5-1.5B-Instruct" in choices and choices[-1] == "someone/extra"
    assert model_picker.preset_choices("Qwen/Qwen2.5-1.5B-Instruct") == ["qwen2.5-1.5b-lora", "qwen2.5-1.5b-qlora"]
    fields = {"lora_rank": None, "load_in_4bit": None, "sample_prompts": None}
    assert model_picker.preset_values("qwen2.5-1.5b-qlora", fields)[:2] == [16, True]
    assert "\n" in model_picker.preset_values("qwen2.5-1.5b-qlora", fields)[2]


def test_download_refused_offline_and_delete(hub_cache, tmp_path):
    ctx = AppContext(model="demo", data_dir=tmp_path)  # no logins: the local admin
    with pytest.raises(gr.Error, match="offline"):
        model_picker.start_download("Qwen/Qwen3-0.6B", None, ctx)
    fake_hub_cache(hub_cache, "Qwen/Qwen3-0.6B", {"config.json": b"{}", "model.safetensors": b"w" * 1000})
    assert model_picker.delete_model("Qwen/Qwen3-0.6B", None, ctx).startswith("Deleted Qwen/Qwen3-0.6B")
    assert "is not in the cache" in model_picker.delete_model("Qwen/Qwen3-0.6B", None, ctx)


def test_with_logins_no_folder_outside_the_roots_is_described(tiny_chat_model, hub_cache, tmp_path, monkeypatch):
    """A user of a shared server cannot learn what exists on its disk through the picker."""
    free(monkeypatch, "ram", 64 * GB)
    outside = AppContext(model="demo", data_dir=tmp_path, model_roots=(tmp_path / "models",))
    info = model_picker.model_info(str(tiny_chat_model), "en", outside)
    assert "local folder" not in info and "size unknown" in info
    inside = AppContext(model="demo", data_dir=tmp_path, model_roots=(tiny_chat_model.parent,))
    assert "a local folder" in model_picker.model_info(str(tiny_chat_model), "en", inside)


def test_download_progress_and_cancel_on_the_page(hub_cache, tmp_path, monkeypatch):
    """A real download child against a mirror that never answers: the status line shows the bytes in the cache
    against the repository's size, then the cancel."""
    import time

    from tests.test_catalog import silent_mirror

    server, held = silent_mirror(monkeypatch)
    monkeypatch.setattr(model_picker.catalog, "repo_size", lambda repo: 4000)
    ctx = AppContext(model="demo", data_dir=tmp_path)
    try:
        assert not model_picker.downloading("Qwen/Qwen3-0.6B")  # Cancel is off while nothing downloads
        assert model_picker.start_download("Qwen/Qwen3-0.6B", None, ctx).startswith("Downloading… 0 B of 3.9 KiB (0%)")
        assert model_picker.downloading("Qwen/Qwen3-0.6B")
        blobs = hub_cache / "models--Qwen--Qwen3-0.6B" / "blobs"
        blobs.mkdir(parents=True)
        (blobs / "part.incomplete").write_bytes(b"x" * 1000)  # what huggingface_hub writes as it downloads
        status = model_picker.download_status("Qwen/Qwen3-0.6B", "zh")
        assert "下载中……1000 B / 3.9 KiB（25%）" in status and "<progress value='0.250'" in status
        deadline = time.time() + 30
        while not held and time.time() < deadline:
            time.sleep(0.1)
        assert model_picker.cancel_download("Qwen/Qwen3-0.6B", None, ctx).startswith("Download cancelled")
        assert model_picker._DOWNLOADS["Qwen/Qwen3-0.6B"].proc.poll() is not None  # the child is gone
        assert not model_picker.downloading("Qwen/Qwen3-0.6B")
        with pytest.raises(gr.Error, match="hub id"):
            model_picker.start_download(str(tmp_path), None, ctx)
    finally:
        model_picker._DOWNLOADS.pop("Qwen/Qwen3-0.6B", None)
        server.close()
