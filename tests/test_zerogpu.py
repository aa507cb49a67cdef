"""ZeroGPU (ui/zerogpu.py) against the real `spaces` package (pinned in the test extra).

Off (no SPACES_ZERO_GPU): the real decorator returns the function itself and the app wraps nothing.

On: the package's real decorator and worker machinery run (spaces/zero/wrappers.py: a forked worker process, the
arguments and every yielded value pickled through its queues, Stop by closing the generator). Replaced, because they
cannot exist here: HF's device API (`client.schedule` / `allow` / `release`, which we record: one schedule = one GPU
call, with its duration) and `spaces.zero.torch` (it imports only with a CUDA build of torch), replaced by the no-op
functions the package itself uses where torch is absent; the work runs on this CPU. Not simulated: the CUDA
emulation `spaces` enters in the main process on a real Space, and moving tensors to a GPU in the worker.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import types
from pathlib import Path

import gradio as gr
import pytest

spaces = pytest.importorskip("spaces")

ROOT = Path(__file__).resolve().parent.parent
PIDS_ENV = "MEDTUNE_TEST_GPU_PIDS"


@pytest.fixture
def gpu_calls(monkeypatch):
    """ZeroGPU on, with the real `spaces` wrappers; yields the list of recorded GPU calls (see the docstring)."""
    import spaces.zero
    from spaces.config import Config
    from spaces.zero import client, decorator
    from spaces.zero.api import ScheduleResponse

    import ui.zerogpu as zerogpu

    calls: list[dict] = []
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setattr(Config, "zero_gpu", True)  # read at import by the package: set as its import would

    def schedule(task_id, request=None, duration=None, gpu_size=None, **_):
        calls.append({"seconds": duration.total_seconds(), "released": None})
        # idle: the GPU stayed with this Space since the last call, so spaces may hand it to the worker it forked then
        return ScheduleResponse(idle=True, nvidiaIndex=0, nvidiaUUID="GPU-test", allowToken=str(len(calls) - 1))

    def release(token, fail=False, allow_404=False):
        calls[int(token)]["released"] = "failed" if fail else "ok"

    monkeypatch.setattr(client, "schedule", schedule)
    monkeypatch.setattr(client, "allow", lambda token: None)
    monkeypatch.setattr(client, "release", release)
    # spaces.zero.torch needs a CUDA build of torch (its static.py reads torch.version.cuda): in its place, what the
    # package itself uses where torch is absent (spaces/zero/torch/__init__.py): the device moves do nothing.
    zero_torch = types.ModuleType("spaces.zero.torch")
    for name in ("enter_mode", "patch", "unpatch", "init", "move"):
        setattr(zero_torch, name, lambda *args, **kwargs: None)
    zero_torch.pack = zero_torch.size = lambda *args, **kwargs: 0
    zero_torch.is_in_bad_fork = lambda *args, **kwargs: False
    monkeypatch.setitem(sys.modules, "spaces.zero.torch", zero_torch)
    monkeypatch.setattr(spaces.zero, "torch", zero_torch, raising=False)
    monkeypatch.setattr(decorator, "decorated_cache", {})
    monkeypatch.setattr(zerogpu, "_decorated", {})
    before = set(multiprocessing.active_children())
    yield calls
    # A worker waits for its next call for as long as the app lives (on a Space, HF's device API ends it): end the
    # ones this test forked, or they would keep copies of other tests' open sockets.
    for worker in set(multiprocessing.active_children()) - before:
        worker.terminate()
        worker.join(5)


def test_off_zerogpu_nothing_is_wrapped(monkeypatch, tmp_path):
    import jobs.runners
    from ui import zerogpu
    from ui.chat_tab import ChatHandlers
    from ui.context import AppContext, with_services

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert spaces.GPU(duration=60)(len) is len  # the real decorator, ZeroGPU off: the function itself
    assert not zerogpu.zerogpu_active() and zerogpu.gpu(60)(len) is len
    monkeypatch.setenv("SPACES_ZERO_GPU", "yes")  # not a value `spaces` reads as on: neither do we
    assert not zerogpu.zerogpu_active()
    monkeypatch.delenv("SPACES_ZERO_GPU")
    handlers = ChatHandlers(AppContext(model="demo", data_dir=tmp_path))
    assert handlers.gpu_key is None and zerogpu.chat_directory(handlers.directory, None) is handlers.directory
    seen = []
    monkeypatch.setattr(jobs.runners, "default_runners", lambda **kw: seen.append(kw) or {})
    with_services(AppContext(model="demo", data_dir=tmp_path)).jobs.close()
    assert seen == [{"batch_call": None}]
    assert zerogpu.start_zerogpu("demo", tmp_path) is False


def test_the_app_on_zerogpu_wires_evaluation_batches_and_refuses_training(gpu_calls, monkeypatch, tmp_path):
    import jobs.runners
    from ui import zerogpu
    from ui.context import AppContext, with_services

    seen = []
    monkeypatch.setattr(jobs.runners, "default_runners", lambda **kw: seen.append(kw) or {})
    with_services(AppContext(model="demo", data_dir=tmp_path)).jobs.close()
    assert seen == [{"batch_call": zerogpu.eval_batch_call}]
    with pytest.raises(gr.Error, match="not available on this ZeroGPU Space"):
        zerogpu.refuse_training("en")


def chat_setup(demo_model, tmp_path):
    from chat_fixtures import build_adapter
    from ui.chat_tab import ChatHandlers
    from ui.context import AppContext

    data_dir = tmp_path / "data"
    build_adapter(demo_model, data_dir / "adapters" / "lora-a", seed=0, base_ref="demo")
    return ChatHandlers(AppContext(model="demo", data_dir=data_dir))


def record_pids(registry, path: Path):
    """Wraps the registry's stream (before any worker is forked) to note the process each answer is made in."""
    stream = registry.stream

    def noted(*args, **kwargs):
        with open(path, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        yield from stream(*args, **kwargs)

    registry.stream = noted


def test_one_chat_answer_is_one_gpu_call_streamed_from_a_worker(gpu_calls, demo_model, tmp_path):
    from chat.panes import stream_panes
    from chat.settings import GenerationSettings
    from ui import zerogpu

    handlers = chat_setup(demo_model, tmp_path)
    assert handlers.gpu_key is not None
    settings = GenerationSettings(max_new_tokens=48)
    panes = [(None, [{"role": "user", "content": "头痛怎么办？"}]), ("lora-a", [{"role": "user", "content": "发烧"}])]
    expected = handlers.registry.generate_panes(panes, settings)  # the same answers without ZeroGPU
    pids = tmp_path / "pids"
    record_pids(handlers.registry, pids)
    directory = zerogpu.chat_directory(handlers.directory, handlers.gpu_key)
    states = [(list(s.texts), list(s.tokens), s.finished) for s in stream_panes(directory, panes, settings)]
    assert gpu_calls == [{"seconds": 15 + 3, "released": "ok"}]  # base and adapter: one call (48 tokens at 20/s)
    assert len(states) >= 2 and not states[0][2] and states[-1][2]  # streamed: a first state, then the end
    assert states[-1][0] == expected and all(states[-1][1])
    assert [int(p) for p in pids.read_text().split()] != [os.getpid()]  # made in the forked worker


def test_the_chat_tab_and_the_blind_test_answer_on_the_gpu(gpu_calls, demo_model, tmp_path):
    from chat.session import Battle
    from ui import zerogpu

    handlers = chat_setup(demo_model, tmp_path)
    request = gr.Request(username="anyone")
    decoding = (24, 0.0, 1.0, 0, 1.0, 0)  # max_new, temperature, top_p, top_k, repetition_penalty, seed
    outputs = list(handlers.send("头痛怎么办？", ["demo", "lora-a"], "", *decoding, {}, request))
    histories = outputs[-1][0]
    assert set(histories) == {"demo", "lora-a"} and all(h[-1]["content"] for h in histories.values())
    battle = Battle(model_a="demo", model_b="lora-a")
    outputs = list(handlers.blind_send("发烧怎么办？", "", *decoding, battle, request))
    assert outputs[-1][0].history_a and outputs[-1][0].history_b
    assert [c["seconds"] for c in gpu_calls] == [15 + 2] * 2  # one per answer, each side by side (24 tokens)


def test_stop_closes_the_gpu_call(gpu_calls, demo_model, tmp_path):
    import threading

    from chat.settings import GenerationSettings
    from ui import zerogpu

    handlers = chat_setup(demo_model, tmp_path)
    stop = threading.Event()
    directory = zerogpu.chat_directory(handlers.directory, handlers.gpu_key)
    steps = directory.registry.stream([(None, "你好")], GenerationSettings(max_new_tokens=1000, min_new_tokens=1000),
                                      stop=stop)
    first = next(steps)
    stop.set()
    rest = list(steps)
    assert len(rest) == 1 and rest[0].finished and rest[0].stopped and rest[0].tokens[0] < 1000
    assert gpu_calls == [{"seconds": 15 + 50, "released": "ok"}] and not first.finished  # 1,000 tokens at 20/s


def test_a_failure_in_the_worker_keeps_its_message(gpu_calls, demo_model, tmp_path):
    from chat.registry import RegistryError
    from chat.settings import GenerationSettings
    from ui import zerogpu

    handlers = chat_setup(demo_model, tmp_path)
    directory = zerogpu.chat_directory(handlers.directory, handlers.gpu_key)
    with pytest.raises(RegistryError, match="exceeds the model's context"):
        list(directory.registry.stream([(None, "你" * 3000)], GenerationSettings(max_new_tokens=8)))


def recording_batch_rows(model, *args):
    """evaluation.run.batch_rows, noting the process it ran in (module-level: pickled by name into the worker)."""
    from evaluation.run import batch_rows

    with open(os.environ[PIDS_ENV], "a") as handle:
        handle.write(f"{os.getpid()}\n")
    return batch_rows.__wrapped__(model, *args)


def test_an_evaluation_job_runs_each_batch_in_one_gpu_call(gpu_calls, monkeypatch, tmp_path):
    import evaluation.run
    from evaluate_fixtures import build_always_b_model, hold_first_run_after_two_items
    from evaluation.run import EvalConfig, batch_rows, evaluate
    from jobs.runners import default_runners, eval_config_to_dict, job_models
    from jobs.scheduler import JobQueue
    from test_queue import ALICE, POLICY, state, wait_for
    from ui import zerogpu

    monkeypatch.setenv(PIDS_ENV, str(tmp_path / "pids"))
    monkeypatch.setattr(recording_batch_rows, "__wrapped__", batch_rows, raising=False)
    monkeypatch.setattr(evaluation.run, "batch_rows", recording_batch_rows)
    hold_first_run_after_two_items(monkeypatch)
    model = build_always_b_model(tmp_path / "always-b")
    mc = str(ROOT / "data" / "mc_sample.jsonl")
    # CircularEval too: its rotations are scored inside the same GPU call as their batch
    config = EvalConfig(data=(mc,), out_dir=str(tmp_path / "evaluations"), batch_size=2, limit=6, circular=True)
    params = {"config": eval_config_to_dict(config), "model": str(model), "data_dir": str(tmp_path / "runs")}
    queue = JobQueue(tmp_path / "runs", runners=default_runners(batch_call=zerogpu.eval_batch_call), poll_s=0.05)
    try:
        job = queue.submit("evaluate", "alice", params)
        wait_for(lambda: (queue.get(job.id).done or 0) >= 2, what="a first batch", timeout_s=60)
        queue.cancel(job.id, ALICE, POLICY)
        wait_for(lambda: state(queue, job.id) == "cancelled")
        assert "run again with the same settings to resume" in queue.get(job.id).error
        assert len(gpu_calls) == 1  # the cancelled run stopped between batches
        queue.resume(job.id, ALICE, POLICY)
        wait_for(lambda: state(queue, job.id) == "completed", timeout_s=60)
        [cell] = queue.output(job.id)
        assert queue.get(job.id).done == queue.get(job.id).total == 6
    finally:
        queue.close()
    # 6 items in batches of 2: 3 GPU calls of EVAL_SECONDS, each made in a worker, none in this process
    assert gpu_calls == [{"seconds": zerogpu.EVAL_SECONDS, "released": "ok"}] * 3
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 3 and os.getpid() not in pids and len(set(pids)) == 1  # the worker was kept between calls
    # The same rows and scores as the run without ZeroGPU (no batch_call: here, in this process)
    monkeypatch.setattr(evaluation.run, "batch_rows", batch_rows)
    plain = evaluate(job_models(queue.get(job.id), None), EvalConfig(**{**config.__dict__,
                                                                        "out_dir": str(tmp_path / "plain")}))
    assert cell.metrics == plain[0].metrics and cell.rows == plain[0].rows and cell.metrics["accuracy"] > 0
    assert "circular_correct" in cell.rows[0]


def test_remote_panes_never_take_a_gpu_call_and_a_refusal_is_the_local_panes_error(gpu_calls, demo_model, tmp_path,
                                                                                    monkeypatch):
    from remote_fixtures import start_scripted_server
    from spaces.zero import client

    from chat.panes import stream_panes
    from chat.settings import GenerationSettings
    from models.remote.endpoints import parse_endpoint_flags
    from ui import zerogpu
    from ui.chat_tab import ChatHandlers
    from ui.context import AppContext

    server, url = start_scripted_server()
    try:
        ctx = AppContext(model="demo", data_dir=tmp_path, endpoints=tuple(parse_endpoint_flags([f"lab={url}"])))
        handlers = ChatHandlers(ctx)
        directory = zerogpu.chat_directory(handlers.directory, handlers.gpu_key)
        panes = [(None, [{"role": "user", "content": "发烧怎么办？"}]), ("ok@lab", [{"role": "user", "content": "头痛怎么办？"}])]
        settings = GenerationSettings(max_new_tokens=8)
        last = list(stream_panes(directory, panes, settings))[-1]
        texts = last.texts
        assert last.errors == [None, None], last.errors
        assert texts[0] and texts[1] == "你好。" and len(gpu_calls) == 1  # the remote pane: no GPU call
        assert list(stream_panes(directory, panes[1:], settings))[-1].texts == ["你好。"] and len(gpu_calls) == 1

        def refuse(*args, **kwargs):  # as spaces/zero/client.py refuses when the quota is spent
            raise gr.Error("You have exceeded your free ZeroGPU quota", title="ZeroGPU quota exceeded")

        monkeypatch.setattr(client, "schedule", refuse)
        last = list(stream_panes(directory, panes, settings))[-1]
        assert "exceeded your free ZeroGPU quota" in last.errors[0] and last.texts[1] == "你好。"
    finally:
        server.shutdown()


def test_start_up_decorates_then_loads_the_base_then_runs_spaces_start_up(gpu_calls, demo_model, tmp_path,
                                                                          monkeypatch):
    """app.py calls start_zerogpu before serving; spaces' own `startup` (defined only when the package was imported
    with ZeroGPU on) is recorded here: what it would find is what a real Space's start-up would pack and report."""
    import spaces.zero
    from spaces.zero import decorator

    from models.local.registry import shared_registry
    from ui import zerogpu

    seen = []
    monkeypatch.setattr(gr.Blocks, "launch", gr.Blocks.launch)  # restored after the test
    monkeypatch.setattr(spaces.zero, "startup", lambda: seen.append(
        (len(decorator.decorated_cache), shared_registry("demo", tmp_path).host.model is not None)), raising=False)
    assert zerogpu.start_zerogpu("demo", tmp_path) is True
    assert seen == [(4, True)]  # two GPU functions (each cached under itself and its wrapper), the base in memory
    assert gpu_calls == []  # start-up takes no GPU call


def test_a_prediction_run_answers_each_batch_in_one_gpu_call(gpu_calls, tmp_path):
    from evaluate_fixtures import build_always_b_model
    from evaluation.predict import PredictConfig, predict
    from models.local.registry import shared_registry
    from ui import zerogpu

    registry = shared_registry(str(build_always_b_model(tmp_path / "always-b")), tmp_path / "data")
    test = tmp_path / "test.jsonl"  # the sample set as a test file: answers removed
    rows = (ROOT / "data" / "mc_sample_competition.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    test.write_text("".join(line.replace('"output"', '"dropped"') + "\n" for line in rows), encoding="utf-8")
    config = PredictConfig(data=str(test), out=str(tmp_path / "sub.jsonl"), batch_size=5)
    [result] = predict(registry, config, batch_call=zerogpu.eval_batch_call)
    assert result.answered_now == 12 and gpu_calls == [{"seconds": zerogpu.EVAL_SECONDS, "released": "ok"}] * 3
    answers = [line for line in Path(result.out).read_text(encoding="utf-8").splitlines()]
    assert len(answers) == 12 and all('"output": "B"' in line for line in answers)


def test_a_failure_crosses_the_pipe_with_its_type_message_and_cause():
    import pickle

    from chat.registry import RegistryError
    from ui.zerogpu import _Failure

    class TwoArgs(Exception):
        def __init__(self, job_id, pid):
            super().__init__(f"job {job_id} is held by {pid}")

    try:
        raise RegistryError("adapter x: cannot attach") from OSError("/secret/path missing")
    except RegistryError as exc:
        failure = pickle.loads(pickle.dumps(_Failure.of(exc)))
    with pytest.raises(RegistryError, match="adapter x: cannot attach") as caught:
        failure.raise_here()
    assert "secret" in str(caught.value.__cause__)  # ui/errors.py shows such an error as unexpected, as before
    failure = pickle.loads(pickle.dumps(_Failure.of(TwoArgs("j1", 42))))  # pickles, but would not load
    with pytest.raises(RegistryError, match="TwoArgs: job j1 is held by 42") as caught:
        failure.raise_here()
    assert caught.value.__cause__ is not None
