"""Model references and hubs (models/refs.py): the demo model, local directories, the hub setting, ModelScope's
clear message when its optional package is missing."""

import importlib.util

import pytest

from models.refs import HubError, canonical_ref, current_hub, resolve_model


def test_hub_setting(monkeypatch):
    monkeypatch.delenv("MEDTUNE_HUB", raising=False)
    assert current_hub() == "huggingface" and current_hub("hf") == "huggingface"
    monkeypatch.setenv("MEDTUNE_HUB", "modelscope")
    assert current_hub() == "modelscope" and current_hub("huggingface") == "huggingface"  # the flag wins
    monkeypatch.setenv("MEDTUNE_HUB", "gitee")
    with pytest.raises(HubError, match="MEDTUNE_HUB: unknown hub 'gitee'"):
        current_hub()


def test_local_directories_and_hf_ids_never_touch_a_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTUNE_HUB", "modelscope")
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct", hub="huggingface") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert canonical_ref(str(tmp_path / ".." / tmp_path.name)) == str(tmp_path.resolve())


@pytest.mark.skipif(importlib.util.find_spec("modelscope") is not None, reason="modelscope is installed here")
def test_modelscope_missing_says_how_to_install():
    with pytest.raises(HubError, match=r'pip install -e "\.\[modelscope\]"'):
        resolve_model("Qwen/Qwen2.5-0.5B-Instruct", hub="modelscope")


def test_adapters_record_their_hub(tmp_path, monkeypatch):
    from models.refs import adapter_hub, record_adapter_base

    assert adapter_hub(tmp_path) is None  # an adapter from before (or from elsewhere): the current setting applies
    monkeypatch.setenv("MEDTUNE_HUB", "modelscope")
    record_adapter_base(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    monkeypatch.delenv("MEDTUNE_HUB")
    assert adapter_hub(tmp_path) == "modelscope"


def test_registry_reports_a_hub_problem_as_a_model_error(monkeypatch):
    from models.local.registry import ModelRegistry, RegistryError

    registry = ModelRegistry("Qwen/Qwen2.5-0.5B-Instruct", hub="gitee")
    with pytest.raises(RegistryError, match="cannot be loaded: --hub: unknown hub"):
        registry.models()[0] and registry.tokenizer


def test_the_base_model_has_one_name_rule():
    """models/interface.py: a name (the base's reference, or None) becomes an adapter (None: the base) in one place."""
    from models.interface import adapter_of, model_name

    assert adapter_of("demo", "demo") is None and adapter_of(None, "demo") is None
    assert adapter_of("my-lora", "demo") == "my-lora"
    assert model_name(None, "demo") == "demo" and model_name("my-lora", "demo") == "my-lora"


@pytest.mark.parametrize("n, shown", [(None, "?"), (0, "0 B"), (1000, "1000 B"), (1024, "1.0 KiB"), (4000, "3.9 KiB"),
                                      (512 * 2**20, "512.0 MiB"), (int(1.5 * 2**30), "1.5 GiB"),
                                      (3 * 2**40, "3.0 TiB"), (5000 * 2**40, "5000.0 TiB")])
def test_one_byte_formatter_in_binary_units(n, shown):
    from models.units import human_bytes

    assert human_bytes(n) == shown
