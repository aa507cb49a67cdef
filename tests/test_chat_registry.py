"""Registry invariants on a tiny model built here: the base pane is exactly the plain model, each adapter pane is
exactly that adapter alone, adapters cost adapter-sized memory, and all work goes through one FIFO queue."""

import threading
from pathlib import Path

import pytest

from models.local.queue import GenerationQueue
from chat.registry import ModelRegistry, RegistryError
from chat.settings import GenerationSettings
from chat_fixtures import build_adapter, build_tiny_model

GREEDY = GenerationSettings(max_new_tokens=24)
CHAT = [{"role": "system", "content": "你是医学助手。"}, {"role": "user", "content": "高血压患者饮食要注意什么？"}]
OTHER = [{"role": "user", "content": "What are the symptoms of a common cold?"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat-registry")
    base = build_tiny_model(root / "base")
    adapters = root / "data" / "adapters"
    for i in range(3):
        build_adapter(base, adapters / f"lora.{i}", seed=i)
    other = build_tiny_model(root / "other-base", seed=99)
    build_adapter(other, adapters / "for-other", seed=5, base_ref="someone/other-model")
    return root, base


@pytest.fixture(scope="module")
def registry(tiny):
    root, base = tiny
    return ModelRegistry(str(base), root / "data")


def plain_answer(model, tokenizer, messages, max_new_tokens=24) -> str:
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.fixture(scope="module")
def references(tiny):
    """What the plain base model and each adapter alone (a fresh PeftModel) answer, for both prompts."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, base = tiny
    tokenizer = AutoTokenizer.from_pretrained(base)
    refs = {}
    plain = AutoModelForCausalLM.from_pretrained(base).eval()
    refs[None] = [plain_answer(plain, tokenizer, m) for m in (CHAT, OTHER)]
    for name in ("lora.0", "lora.1"):
        alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), root / "data/adapters" / name)
        refs[name] = [plain_answer(alone.eval(), tokenizer, m) for m in (CHAT, OTHER)]
    return refs


def test_models_lists_base_adapters_and_flags_incompatible(registry):
    models = {m.name: m for m in registry.models()}
    assert list(models)[0] == registry.base_name and models[registry.base_name].kind == "base"
    assert {"lora.0", "lora.1", "lora.2", "for-other"} <= set(models)
    assert not models["for-other"].compatible and "someone/other-model" in models["for-other"].reason
    assert models["lora.0"].compatible and models["lora.0"].bytes > 0  # size on disk before loading
    assert "for-other" not in registry.usable_models()
    with pytest.raises(RegistryError, match="for-other.*cannot be used"):
        registry.generate_panes([("for-other", CHAT)], GREEDY)


def test_panes_match_plain_base_and_each_adapter_alone(registry, references):
    # One mixed batch: base + two adapters, the same prompt in every row.
    answers = registry.generate_panes([(None, CHAT), ("lora.0", CHAT), ("lora.1", CHAT)], GREEDY)
    assert answers == [references[None][0], references["lora.0"][0], references["lora.1"][0]]
    assert len(set(answers)) == 3, "the adapters must change the answers, or this test proves nothing"
    # Rows of different lengths (left padding) and the base named explicitly.
    answers = registry.generate_panes([("lora.1", OTHER), (registry.base_name, CHAT), ("lora.0", OTHER)], GREEDY)
    assert answers == [references["lora.1"][1], references[None][0], references["lora.0"][1]]


def test_peft_mixed_batch_path_gives_the_same_answers(tiny, references):
    root, base = tiny
    peft_path = ModelRegistry(str(base), root / "data", batched_lora=False)  # peft's adapter_names=[...] batch
    answers = peft_path.generate_panes([("lora.1", CHAT), (None, OTHER), ("lora.0", CHAT)], GREEDY)
    assert answers == [references["lora.1"][0], references[None][1], references["lora.0"][0]]


def test_dora_adapter_falls_back_and_stays_exact(tiny):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, base = tiny
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], use_dora=True, init_lora_weights=False))
    model.save_pretrained(root / "dora" / "dora")
    registry = ModelRegistry(str(base))
    registry.add_adapter(str(root / "dora" / "dora"))
    tokenizer = AutoTokenizer.from_pretrained(base)
    alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), root / "dora" / "dora").eval()
    assert registry.generate([CHAT], adapter="dora", settings=GREEDY) == [plain_answer(alone, tokenizer, CHAT)]
    with pytest.raises(RegistryError, match="DoRA"):  # peft cannot mix DoRA rows in one batch: said plainly
        registry.generate_panes([(None, CHAT), ("dora", CHAT)], GREEDY)


def test_layers_no_row_uses_stay_plain(tiny, references):
    # lora.0 touches q, v and down; "attn-only" touches k and o only: each row must see exactly its own layers.
    root, base = tiny
    registry = ModelRegistry(str(base), root / "data")
    registry.add_adapter(str(build_adapter(base, root / "more" / "attn-only", seed=21, targets=("k_proj", "o_proj"))))
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), root / "more" / "attn-only")
    expected = plain_answer(alone.eval(), AutoTokenizer.from_pretrained(base), CHAT)
    answers = registry.generate_panes([("attn-only", CHAT), (None, CHAT), ("lora.0", OTHER)], GREEDY)
    assert answers == [expected, references[None][0], references["lora.0"][1]]
    assert registry.generate([CHAT], adapter=None, settings=GREEDY) == [references[None][0]]


def test_batched_generate_matches_one_by_one(registry, references):
    assert registry.generate([CHAT, OTHER], adapter="lora.0", settings=GREEDY, batch_size=2) == references["lora.0"]
    assert registry.generate([CHAT, OTHER], adapter=None, settings=GREEDY, batch_size=1) == references[None]


def test_memory_is_one_base_plus_adapter_sized_increments(registry, tiny):
    from transformers import AutoModelForCausalLM

    registry.attach("lora.2")
    models = {m.name: m for m in registry.models()}
    plain = AutoModelForCausalLM.from_pretrained(tiny[1])
    assert models[registry.base_name].bytes == sum(p.numel() * 4 for p in plain.parameters())  # one base, fp32
    # r=4 LoRA on q (64->64), v (64->32), down (128->64), 2 layers, fp32: (4*64+64*4 + 4*64+32*4 + 4*128+64*4) * 2 * 4
    assert models["lora.2"].loaded and models["lora.2"].bytes == 13312


def test_new_adapter_appears_without_restart_and_retrained_one_reloads(registry, tiny):
    import shutil

    root, base = tiny
    assert "late" not in registry.usable_models()
    build_adapter(base, root / "data/adapters/late", seed=11)
    assert "late" in registry.usable_models()
    first = registry.generate_panes([("late", CHAT)], GREEDY)[0]
    shutil.rmtree(root / "data/adapters/late")
    build_adapter(base, root / "data/adapters/late", seed=12)  # retrained under the same name
    assert registry.generate_panes([("late", CHAT)], GREEDY)[0] != first


def test_streaming_yields_growing_text_then_final(registry, references, monkeypatch):
    monkeypatch.setattr(registry, "update_interval_s", 0.0)  # an update for every step
    states = [(list(s.texts), s.finished) for s in registry.stream([(None, CHAT), ("lora.0", CHAT)], GREEDY)]
    assert len(states) > 3 and states[-1][1] and not states[0][1]
    assert states[-1][0] == [references[None][0], references["lora.0"][0]]
    lengths = [len(texts[0]) for texts, _ in states]
    assert lengths == sorted(lengths)


def test_streamed_updates_come_at_most_every_interval(registry, monkeypatch):
    """The first token at once, then one update per interval with every step since, then the end."""
    settings = GenerationSettings(max_new_tokens=150, min_new_tokens=150)
    # The interval is an eighth of this machine's time for the answer, so the test holds on a fast idle CPU (150 tokens
    # took under 0.1 s there) as on a loaded one.
    monkeypatch.setattr(registry, "update_interval_s", 0.0)
    answer_s = list(registry.stream([(None, CHAT)], settings))[-1].elapsed_s
    interval = answer_s / 8
    monkeypatch.setattr(registry, "update_interval_s", interval)
    seen = [(s.elapsed_s, s.tokens[0], s.finished) for s in registry.stream([(None, CHAT)], settings)]
    assert seen[0][1] == 1 and seen[-1][1:] == (150, True)
    middle = seen[1:-1]
    assert middle, "a 150-token answer lasts more than one interval on this model"
    gaps = [b[0] - a[0] for a, b in zip(seen, middle)]
    assert min(gaps) >= interval
    assert all(a[1] < b[1] for a, b in zip(seen, seen[1:-1]))  # each update brings new tokens


def test_stop_event_ends_early_and_frees_the_queue(registry):
    stop = threading.Event()
    settings = GenerationSettings(max_new_tokens=200, min_new_tokens=200)
    for state in registry.stream([(None, CHAT)], settings, stop=stop):
        if state.tokens[0] >= 3:
            stop.set()
    assert state.finished and state.tokens[0] < 200
    assert len(registry.queue) == 0
    gen = registry.stream([(None, CHAT)], settings)  # a reader that walks away mid-answer
    next(gen)
    gen.close()
    assert len(registry.queue) == 0


def test_concurrent_users_get_their_own_answers(registry, references):
    results = {}

    def user(name):
        results[name] = registry.generate_panes([(name, CHAT)], GREEDY)[0]

    threads = [threading.Thread(target=user, args=(n,)) for n in (None, "lora.0", "lora.1")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == {n: references[n][0] for n in (None, "lora.0", "lora.1")}


def test_a_waiting_request_reports_its_place_in_line(registry, references):
    holder = registry.queue.enter()  # someone else's long answer holds the model
    registry.queue.wait(holder)
    stream = registry.stream([(None, CHAT)], GREEDY)
    first = next(stream)
    assert first.waiting == 1 and not first.texts[0]
    registry.queue.leave(holder)
    final = [s for s in stream][-1]
    assert final.finished and final.texts == [references[None][0]]


def test_sampling_is_reproducible_with_a_seed(registry):
    sampled = GenerationSettings(max_new_tokens=16, temperature=1.0, top_k=50, top_p=0.95, seed=1)
    first = registry.generate_panes([(None, CHAT), ("lora.0", CHAT)], sampled)
    assert registry.generate_panes([(None, CHAT), ("lora.0", CHAT)], sampled) == first
    other = [registry.generate_panes([(None, CHAT)], GenerationSettings(16, 1.0, seed=s))[0] for s in (2, 3, 4)]
    assert any(o != first[0] for o in other)


def test_errors_name_what_is_wrong(registry):
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        registry.generate_panes([("nope", CHAT)], GREEDY)
    with pytest.raises(RegistryError, match="context of 512 tokens"):
        registry.generate_panes([(None, "长" * 600)], GREEDY)
    with pytest.raises(ValueError, match="top_p must be in"):
        GenerationSettings(top_p=0.0)
    with pytest.raises(RegistryError, match="no adapter_config.json"):
        registry.add_adapter(str(Path(__file__).parent))


def test_add_adapter_by_path(tiny):
    root, base = tiny
    outside = build_adapter(base, root / "elsewhere" / "my.adapter", seed=3)
    registry = ModelRegistry(str(base))  # no data dir: only explicit adapters
    assert registry.add_adapter(str(outside)) == "my.adapter"
    assert registry.usable_models() == [str(base), "my.adapter"]
    assert registry.generate_panes([("my.adapter", OTHER)], GREEDY)[0]


def test_queue_is_first_come_first_served():
    queue = GenerationQueue()
    tickets = [queue.enter() for _ in range(3)]
    assert [queue.ahead(t) for t in tickets] == [0, 1, 2]
    assert not queue.wait(tickets[1], timeout=0.01)
    queue.leave(tickets[0])
    assert queue.wait(tickets[1], timeout=0.01) and queue.ahead(tickets[2]) == 1
    queue.leave(tickets[2])  # giving up a place in line
    queue.leave(tickets[1])
    assert len(queue) == 0 and queue.ahead(tickets[1]) == -1


def test_lean_greedy_loop_gives_what_generate_gives(tiny):
    """chat/decode.py's loop against `generate` on the same panes, with the knobs it implements itself."""
    from transformers import GenerationConfig

    from models.local.decode import lean_decode_supported

    root, base = tiny
    lean, plain = (ModelRegistry(str(base), root / "data", lean_decode=flag) for flag in (True, False))
    panes = [(None, CHAT), ("lora.0", OTHER), ("lora.1", CHAT), (None, OTHER)]
    for settings in (GREEDY, GenerationSettings(max_new_tokens=20, repetition_penalty=1.3, min_new_tokens=12)):
        assert lean.generate_panes(panes, settings) == plain.generate_panes(panes, settings)
        assert lean.generate_panes(panes[:1], settings) == plain.generate_panes(panes[:1], settings)
    assert lean_decode_supported(lean.model.generation_config, GREEDY)  # so the loop really answered above
    assert not lean_decode_supported(GenerationConfig(), GenerationSettings(temperature=0.7))  # sampling: generate
    assert not lean_decode_supported(GenerationConfig(no_repeat_ngram_size=3), GREEDY)  # a rule the loop lacks
