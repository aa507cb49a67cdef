"""The registry's memory budget: least-recently-used adapters are detached to make room (never one the request
uses, never the base), each unload is recorded with its reason, and a detached adapter answers exactly as before
when it is used again."""

import pytest

from chat.registry import ModelRegistry, RegistryError, human_bytes
from chat.settings import GenerationSettings
from chat_fixtures import build_adapter, build_tiny_model

GREEDY = GenerationSettings(max_new_tokens=16)
CHAT = [{"role": "user", "content": "高血压患者饮食要注意什么？"}]
NAMES = ["lora.0", "lora.1", "lora.2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat-budget")
    base = build_tiny_model(root / "base")
    for i, name in enumerate(NAMES):
        build_adapter(base, root / "data" / "adapters" / name, seed=i)
    return root, base


@pytest.fixture(scope="module")
def unbudgeted(tiny):
    """Every adapter's answer from a registry without a budget (nothing ever detached)."""
    registry = ModelRegistry(str(tiny[1]), tiny[0] / "data")
    return {name: registry.generate_panes([(name, CHAT)], GREEDY)[0] for name in [None, *NAMES]}, registry


def budget_for_two(registry) -> int:
    """The base plus two adapters in memory, with room for the on-disk estimate made before attaching."""
    sizes = {m.name: m for m in registry.models()}
    memory = sizes["lora.0"].bytes
    disk = (registry.adapters_dir / "lora.0" / "adapter_model.safetensors").stat().st_size
    return sizes[registry.base_name].bytes + memory + max(memory, disk) + 100


def ask(registry, name, events=None):
    state = None
    for state in registry.stream([(name, CHAT)], GREEDY, on_unload=None if events is None else events.append):
        pass
    return state.texts[0]


def test_least_recently_used_adapter_is_unloaded_and_comes_back_identical(tiny, unbudgeted):
    answers, full = unbudgeted
    registry = ModelRegistry(str(tiny[1]), tiny[0] / "data", memory_budget_bytes=budget_for_two(full))
    events = []
    assert [ask(registry, n, events) for n in NAMES[:2]] == [answers["lora.0"], answers["lora.1"]]
    assert events == [] and registry.loaded() == [registry.base_name, "lora.1", "lora.0"]
    assert ask(registry, "lora.2", events) == answers["lora.2"]
    assert [(e.name, e.kind, e.reason) for e in events] == [("lora.0", "adapter", "lru")]
    assert events[0].bytes == 13312 and events[0].budget_bytes == registry.memory_budget_bytes
    assert registry.loaded() == [registry.base_name, "lora.2", "lora.1"]
    loaded = {m.name: m.loaded for m in registry.models()}
    assert not loaded["lora.0"] and loaded["lora.1"] and loaded["lora.2"]
    # Used again: attached again (lora.1 is now the least recently used) and the same tokens as before.
    assert ask(registry, "lora.0", events) == answers["lora.0"]
    assert [e.name for e in events] == ["lora.0", "lora.1"] and list(registry.unloads)[-1].name == "lora.1"
    assert ask(registry, None) == answers[None]  # the base never leaves


def test_adapters_of_the_running_request_are_never_unloaded(tiny, unbudgeted):
    answers, full = unbudgeted
    registry = ModelRegistry(str(tiny[1]), tiny[0] / "data", memory_budget_bytes=budget_for_two(full))
    ask(registry, "lora.1")
    ask(registry, "lora.0")  # lora.1 is the least recently used now, but the next request needs it
    events = []
    texts = [s for s in registry.stream([("lora.1", CHAT), ("lora.2", CHAT)], GREEDY, on_unload=events.append)][-1]
    assert texts.texts == [answers["lora.1"], answers["lora.2"]]
    assert [e.name for e in events] == ["lora.0"]
    with pytest.raises(RegistryError) as err:  # three at once cannot fit beside the base: said plainly
        registry.generate_panes([(n, CHAT) for n in NAMES], GREEDY)
    message = str(err.value)
    assert "memory budget of" in message and human_bytes(registry.memory_budget_bytes) in message
    assert "--memory-budget-gb" in message and registry.base_name in message
    assert len(registry.loaded()) <= 3 and len(registry.queue) == 0
    assert ask(registry, "lora.2") == answers["lora.2"]  # still serves afterwards


def test_unload_on_request_frees_adapters_and_base_and_all_reload(tiny, unbudgeted):
    answers, _ = unbudgeted
    registry = ModelRegistry(str(tiny[1]), tiny[0] / "data")  # no budget
    assert registry.attach("lora.0") == [] and registry.loaded() == [registry.base_name, "lora.0"]
    events = registry.unload("lora.0")
    assert [(e.name, e.reason, e.budget_bytes) for e in events] == [("lora.0", "request", None)]
    with pytest.raises(RegistryError, match="'lora.0' is not loaded"):
        registry.unload("lora.0")
    ask(registry, "lora.1")
    events = registry.unload(registry.base_name)
    assert [(e.name, e.kind) for e in events] == [("lora.1", "adapter"), (registry.base_name, "base")]
    assert registry.loaded() == [] and {m.name: m.bytes for m in registry.models()}[registry.base_name] == 0
    assert [ask(registry, n) for n in (None, "lora.1")] == [answers[None], answers["lora.1"]]


def test_base_over_budget_still_answers_but_refuses_adapters(tiny):
    registry = ModelRegistry(str(tiny[1]), tiny[0] / "data", memory_budget_bytes=1000)
    assert ask(registry, None)
    with pytest.raises(RegistryError, match="does not fit in the memory budget of 1000 B"):
        ask(registry, "lora.0")
    assert registry.loaded() == [registry.base_name]
    with pytest.raises(RegistryError, match="must be positive"):
        registry.set_memory_budget(0)
