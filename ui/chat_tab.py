"""The Chat tab: models side by side (streaming), a blind A/B test with votes, and the leaderboard.

The model registry (one base in memory, adapters attached by name) is shared by every user of the app; each browser
session keeps its own conversations in gr.State. Handlers are methods of `ChatHandlers` (so gradio sees their
`gr.Request` parameter and their generator nature); the Blocks code at the bottom only wires them.
"""

import random
import threading
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pandas as pd

from chat.leaderboard import head_to_head, leaderboard
from chat.panes import stream_panes
from chat.registry import ModelRegistry, RegistryError, Unload, shared_registry
from chat.session import MAX_PANES, Battle, add_turn, check_selection, drop_last_turn, new_battle, with_system
from chat.settings import GenerationSettings
from chat.votes import OUTCOMES, VoteStore
from models.directory import shared_directory
from models.interface import IN_PROCESS
from models.units import human_bytes
from ui.access import allowed, checked_model_ref, require, session_key
from ui.charts import interval_chart
from ui.context import AppContext
from ui.footer import REFRESH_JS
from ui.errors import backend_error
from ui.scratch import download_dir
from ui.strings import t
from ui.zerogpu import chat_directory, register_directory, zerogpu_active

STREAM_INTERVAL_S = 0.08  # at most ~12 UI updates a second per request, however fast the model is
GENERATE_CONCURRENCY = 8  # requests let through to the registry's own FIFO queue (which shows the place in line)
_STOPS: dict[tuple[str, str, str], threading.Event] = {}  # (user, browser session, kind) -> running generation's stop


def _stop_key(request: gr.Request | None, ctx: AppContext, kind: str) -> tuple[str, str, str]:
    return *session_key(request, ctx), kind


def decoding_settings(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed,
                      lang: str = "en") -> GenerationSettings:
    try:
        return GenerationSettings.from_values(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                              top_k=top_k, repetition_penalty=repetition_penalty, seed=seed)
    except (TypeError, ValueError) as exc:  # the sliders keep to the ranges; an API caller may not
        detail = str(exc) if lang == "en" else t("chat.bad_settings", lang)
        raise gr.Error(detail, print_exception=False) from None


def pane_values(models: list[str], histories: dict, prompt: str | None = None, texts: list[str] | None = None,
                relabel: bool = True):
    """Values for the MAX_PANES chatbots: one visible, labelled pane per model, the rest hidden.

    relabel=False (while streaming) sends bare values: an update that touches a label or visibility makes gradio
    rebuild the component and its API schema, which cost ~20 ms of CPU per update and slowed decoding up to 5x.
    """
    updates = []
    for i in range(MAX_PANES):
        if i >= len(models):
            updates.append(gr.update(visible=False, value=[]) if relabel else gr.skip())
            continue
        messages = list(histories.get(models[i], []))
        if prompt is not None:
            messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": texts[i] if texts else ""}]
        updates.append(gr.update(visible=True, label=models[i], value=messages) if relabel else messages)
    return updates


def shown_texts(state, lang: str) -> list[str]:
    """Each pane's answer, with the reason when a (remote) model failed: that pane says why, the others go on."""
    errors = state.errors or [None] * len(state.texts)
    return [text + (("\n\n" if text else "") + t("chat.remote_failed", lang).format(reason=error) if error else "")
            for text, error in zip(state.texts, errors)]


def status_line(state, lang: str) -> str:
    if state.waiting:
        return t("chat.status_waiting", lang).format(n=state.waiting)
    if not state.finished:
        return t("chat.status_running", lang).format(tokens=max(state.tokens, default=0))
    if state.stopped:
        return t("chat.status_stopped_after", lang).format(tokens=max(state.tokens, default=0))
    speeds = state.tokens_per_s()
    return t("chat.status_done", lang).format(speed=max(speeds, default=0.0), ttft=state.first_token_s or 0.0)


class ChatHandlers:
    """Every event of the tab. Shared: the registry and the vote store. Per session: the gr.State values passed in."""

    def __init__(self, ctx: AppContext):
        self.ctx, self.lang = ctx, ctx.lang
        # GiB, as every size on the page is shown (models/units.py): "--memory-budget-gb 2" reads back as "2.0 GiB"
        budget = None if ctx.memory_budget_gb is None else int(ctx.memory_budget_gb * 2**30)
        self.registry: ModelRegistry = shared_registry(ctx.model, ctx.data_dir, memory_budget_bytes=budget)
        self.votes = VoteStore(Path(ctx.data_dir) / "chat" / "votes.sqlite")
        # Local and remote models by name; the endpoints are the admin's (flags, <data_dir>/endpoints.yaml).
        self.directory = shared_directory(self.registry, list(ctx.endpoints), Path(ctx.data_dir) / "endpoints.yaml")
        # On ZeroGPU, registered now (before any GPU worker is forked) so that a worker finds it (ui/zerogpu.py).
        self.gpu_key = register_directory(self.directory) if zerogpu_active() else None

    def choices(self) -> list[tuple[str, str]]:
        """(label, name) of every usable model, in-process first, then each endpoint's, labelled by where they run
        (in-process models are labelled by name alone while no endpoint is configured: there is nothing to tell)."""
        entries = [e for e in self.directory.listing() if e.compatible]
        if all(e.where == IN_PROCESS for e in entries):
            return [(e.name, e.name) for e in entries]
        where = {IN_PROCESS: t("chat.where_local", self.lang)}
        return [(f"{e.label} · {where.get(e.where) or t('chat.where_remote', self.lang).format(endpoint=e.where)}",
                 e.name) for e in entries]

    # ---- models ------------------------------------------------------------------------------------------
    def model_table(self) -> pd.DataFrame:
        rows = []
        for m in self.registry.models():
            if not m.compatible:
                status = t("chat.incompatible", self.lang).format(reason=m.reason)
            elif m.loaded:
                status = t("chat.loaded", self.lang).format(size=human_bytes(m.bytes))
            elif m.kind == "base":
                status = t("chat.base_not_loaded", self.lang)
            else:
                status = t("chat.on_disk", self.lang).format(size=human_bytes(m.bytes))
            if m.decoding:  # the loaded base: the fast decoding step, or why its answers take the full forward
                status += t("chat.decoding_path", self.lang).format(path=m.decoding)
            rows.append([m.name, t(f"chat.kind_{m.kind}", self.lang), status])
        for e in self.directory.listing():
            if e.where != IN_PROCESS:
                status = t("chat.where_remote", self.lang).format(endpoint=e.where)
                rows.append([e.name, t("chat.kind_remote", self.lang), status if e.compatible else e.reason])
        if self.directory.file_error:
            rows.append(["endpoints.yaml", "", t("chat.endpoints_file_error", self.lang).format(
                error=self.directory.file_error)])
        return pd.DataFrame(rows, columns=[t(f"chat.col_{c}", self.lang) for c in ("model", "kind", "status")])

    def refresh(self, selected: list[str]):
        choices = self.choices()
        usable = [name for _, name in choices]
        kept = [m for m in (selected or []) if m in usable] or usable[:1]
        return gr.update(choices=choices, value=kept), self.model_table()

    def select(self, models: list[str], histories: dict):
        return pane_values(models or [], histories or {})

    # ---- load / unload (admin) ---------------------------------------------------------------------------
    def unload_message(self, event: Unload) -> str:
        budget = human_bytes(event.budget_bytes) if event.budget_bytes is not None else ""
        return t(f"models.unloaded_{event.reason}", self.lang).format(name=event.name, size=human_bytes(event.bytes),
                                                                      budget=budget)

    def manage_intro(self) -> str:
        budget = self.registry.memory_budget_bytes
        note = t("models.no_budget", self.lang) if budget is None else \
            t("models.budget", self.lang).format(budget=human_bytes(budget))
        return t("models.intro", self.lang).format(budget=note)

    def manage_box(self, request: gr.Request):
        """Shown to those who may load and unload models (the admin), with the current model names."""
        names = [m.name for m in self.registry.models() if m.compatible]
        return gr.update(visible=allowed(request, self.ctx, "manage_models")), gr.update(choices=names)

    def load_model(self, name: str, request: gr.Request):
        require(request, self.ctx, "manage_models")
        if not (name or "").strip():
            raise gr.Error(t("models.need_name", self.lang))
        name = name.strip()
        if name not in {m.name for m in self.registry.models()}:  # a new path or hub id: only inside the roots
            name = checked_model_ref(name, self.ctx)
        try:
            if name not in self.registry.usable_models():
                name = self.registry.add_adapter(name)
            events = self.registry.attach(name)
        except RegistryError as exc:  # a failed load wraps the library's text: shown as a request id (ui/errors.py)
            raise backend_error(exc, self.lang, "chat") from None
        size = {m.name: m.bytes for m in self.registry.models()}.get(name, 0)
        lines = [self.unload_message(e) for e in events] + [t("models.loaded", self.lang).format(
            name=name, size=human_bytes(size))]
        if self.registry.host.template_notice:  # the base ships no chat template: say that ChatML stands in
            lines.append(t("preflight.no_chat_template", self.lang).format(model=self.registry.host.base_name))
        return "  \n".join(lines), self.model_table()

    def unload_model(self, name: str, request: gr.Request):
        require(request, self.ctx, "manage_models")
        if not (name or "").strip():
            raise gr.Error(t("models.need_name", self.lang))
        try:
            events = self.registry.unload(name.strip())
        except RegistryError as exc:  # a failed load wraps the library's text: shown as a request id (ui/errors.py)
            raise backend_error(exc, self.lang, "chat") from None
        return "  \n".join(self.unload_message(e) for e in events), self.model_table()

    # ---- side by side ------------------------------------------------------------------------------------
    def _stream(self, panes, settings, request, kind: str):
        """Registry stream, thinned to a few updates a second; RegistryError becomes a message for the user.

        While waiting in line, only a new place in line is sent: the registry reports it every 0.25 s, and with
        20 users each waiting request re-sending the same status cost CPU that the one generating request needed.
        """
        last, shown_place, key, stop = 0.0, None, _stop_key(request, self.ctx, kind), threading.Event()
        _STOPS[key] = stop
        unloaded: list[Unload] = []  # appended by the generating thread; told here, in the request's own thread
        try:
            # On ZeroGPU the in-process panes answer in one @spaces.GPU call (ui/zerogpu.py); else self.directory.
            directory = chat_directory(self.directory, self.gpu_key)
            for state in stream_panes(directory, panes, settings, stop=stop, on_unload=unloaded.append):
                while unloaded:
                    gr.Warning(self.unload_message(unloaded.pop(0)))
                now = time.perf_counter()
                if state.waiting:
                    if state.waiting != shown_place:
                        shown_place = state.waiting
                        yield state
                elif state.finished or now - last >= STREAM_INTERVAL_S:
                    last = now
                    yield state
        except RegistryError as exc:  # a failed load wraps the library's text: shown as a request id (ui/errors.py)
            raise backend_error(exc, self.lang, "chat") from None
        finally:
            if _STOPS.get(key) is stop:
                del _STOPS[key]

    def send(self, prompt, models, system, max_new, temperature, top_p, top_k, rep, seed, histories,
             request: gr.Request):
        require(request, self.ctx, "chat")
        settings = decoding_settings(max_new, temperature, top_p, top_k, rep, seed, self.lang)
        prompt, histories = (prompt or "").strip(), histories or {}
        if not prompt:
            raise gr.Error(t("chat.need_prompt", self.lang))
        usable = self.directory.usable_models()
        # Said here in the page's language; check_selection below is the backend's own guard, same rules.
        if not 1 <= len(models or []) <= MAX_PANES:
            raise gr.Error(t("chat.tick_models", self.lang).format(n=MAX_PANES, ticked=len(models or [])))
        gone = [m for m in models if m not in usable]
        if gone:
            raise gr.Error(t("chat.models_gone", self.lang).format(models=", ".join(gone)))
        check_selection(models, usable)
        panes = [(m, with_system(system, histories.get(m, []), prompt)) for m in models]
        running = t("chat.status_running", self.lang).format(tokens=0)
        yield histories, "", running, *pane_values(models, histories, prompt), gr.skip()
        for state in self._stream(panes, settings, request, "side"):
            status = status_line(state, self.lang) + ("" if settings.greedy else f" (seed {settings.seed})")
            if state.finished:  # the model table too: adapters used for the first time are now in memory
                histories = add_turn(histories, models, prompt, shown_texts(state, self.lang))
                yield histories, "", status, *pane_values(models, histories, relabel=False), self.model_table()
            else:
                panes_now = pane_values(models, histories, prompt, shown_texts(state, self.lang), relabel=False)
                yield histories, "", status, *panes_now, gr.skip()

    def regenerate(self, models, system, max_new, temperature, top_p, top_k, rep, seed, histories,
                   request: gr.Request):
        histories, prompt = drop_last_turn(histories or {}, models or [])
        if prompt is None:
            raise gr.Error(t("chat.nothing_to_regenerate", self.lang))
        if temperature:  # sampling: a new draw (its seed is shown, so it can be reproduced); greedy: same answer
            seed = random.randrange(2**31)
        yield from self.send(prompt, models, system, max_new, temperature, top_p, top_k, rep, seed, histories,
                             request)

    def _stop(self, request: gr.Request | None, kind: str) -> str:
        event = _STOPS.get(_stop_key(request, self.ctx, kind))
        if event is not None:
            event.set()
        return t("chat.status_stopped", self.lang)

    def stop(self, request: gr.Request):
        return self._stop(request, "side")

    def blind_stop(self, request: gr.Request):
        return self._stop(request, "blind")

    def clear(self, models):
        return {}, "", *pane_values(models or [], {})

    # ---- blind test --------------------------------------------------------------------------------------
    def blind_new(self):
        usable = self.directory.usable_models()
        if len(set(usable)) < 2:  # new_battle's own rule, said in the page's language
            raise gr.Error(t("chat.blind_need_two", self.lang))
        battle = new_battle(usable, random.SystemRandom())
        panes = [gr.update(value=[], label=t(f"chat.pane_{side}", self.lang)) for side in "ab"]
        return battle, *panes, t("chat.blind_ready", self.lang), *[gr.update(interactive=False)] * len(OUTCOMES)

    def blind_send(self, prompt, system, max_new, temperature, top_p, top_k, rep, seed, battle: Battle | None,
                   request: gr.Request):
        require(request, self.ctx, "chat")
        settings = decoding_settings(max_new, temperature, top_p, top_k, rep, seed, self.lang)
        prompt = (prompt or "").strip()
        if battle is None or battle.voted:
            raise gr.Error(t("chat.blind_need_battle", self.lang))
        if not prompt:
            raise gr.Error(t("chat.need_prompt", self.lang))
        panes = [(battle.model_a, with_system(system, list(battle.history_a), prompt)),
                 (battle.model_b, with_system(system, list(battle.history_b), prompt))]
        votes_off = [gr.update(interactive=False)] * len(OUTCOMES)
        yield battle, "", gr.skip(), gr.skip(), t("chat.status_running", self.lang).format(tokens=0), *votes_off
        # Votes record where each model ran (in this app, or which endpoint): model names stay as listed.
        where = {"a": self.directory.where(battle.model_a), "b": self.directory.where(battle.model_b)}
        for state in self._stream(panes, settings, request, "blind"):
            texts = shown_texts(state, self.lang)
            turn = [[{"role": "user", "content": prompt}, {"role": "assistant", "content": text}] for text in texts]
            if state.finished:
                battle = battle.answered(prompt, *texts, settings={**settings.to_dict(), "system": system,
                                                                   "where": where})
                yield (battle, "", list(battle.history_a), list(battle.history_b), status_line(state, self.lang),
                       *[gr.update(interactive=True)] * len(OUTCOMES))
            else:
                yield (battle, "", list(battle.history_a) + turn[0], list(battle.history_b) + turn[1],
                       status_line(state, self.lang), *[gr.skip()] * len(OUTCOMES))

    def blind_vote(self, outcome: str, battle: Battle | None, request: gr.Request):
        voter = require(request, self.ctx, "vote").name
        if battle is None:
            raise gr.Error(t("chat.blind_need_battle", self.lang))
        if outcome not in OUTCOMES:
            raise gr.Error(t("chat.bad_outcome", self.lang).format(outcomes=", ".join(OUTCOMES), outcome=repr(outcome)))
        if battle.voted or not battle.history_a:  # Battle.vote's own rules, said in the page's language
            raise gr.Error(t("chat.blind_voted" if battle.voted else "chat.blind_need_answers", self.lang))
        # The user's name, never the session hash: that would let whoever reads votes take over the session.
        vote = battle.vote(outcome, voter, self.registry.base_name)
        self.votes.add(vote)
        label = t(f"chat.vote_{outcome}", self.lang)
        reveal = t("chat.blind_reveal", self.lang).format(a=battle.model_a, b=battle.model_b, outcome=label)
        labels = [gr.update(label=f"{t(f'chat.pane_{side}', self.lang)} · {name}")
                  for side, name in zip("ab", (battle.model_a, battle.model_b))]
        return replace(battle, voted=outcome), reveal, *labels, *[gr.update(interactive=False)] * len(OUTCOMES)

    def vote_with(self, outcome: str):
        """The handler of one vote button."""
        def handler(battle: Battle | None, request: gr.Request):
            return self.blind_vote(outcome, battle, request)

        return handler

    # ---- leaderboard -------------------------------------------------------------------------------------
    def board(self):
        """The public leaderboard: aggregates only (ratings, intervals, head-to-head counts), and those as CSV.
        Never the votes themselves: they hold every voter's prompts and conversations (see export_votes)."""
        battles = self.votes.battles(base_model=self.registry.base_name)
        summary = t("chat.board_summary" if battles else "chat.board_empty", self.lang).format(
            n=len(battles), base=self.registry.base_name)
        standings, h2h = self.standings_frame(battles), self.h2h_frame(battles)
        csv_path = download_dir("leaderboard-") / "leaderboard.csv"
        with csv_path.open("w", encoding="utf-8-sig", newline="") as f:  # BOM: Excel shows Chinese right
            standings.to_csv(f, index=False)
            f.write("\n")
            h2h.to_csv(f, index=False)
        return summary, standings, h2h, str(csv_path)

    def board_chart(self) -> str:
        """Each model's Bradley–Terry rating with its bootstrap 95% interval, as a picture (ui/charts.py)."""
        standings = leaderboard(self.votes.battles(base_model=self.registry.base_name))
        rows = [(s.model, s.bt, *s.bt_ci) for s in standings]
        return interval_chart(rows, t("chat.chart_axis", self.lang), t("chat.chart_title", self.lang))

    def export_box(self, request: gr.Request):
        """The votes export is shown to those who may export (the admin); its handler checks again."""
        return gr.update(visible=allowed(request, self.ctx, "export_votes"))

    def export_votes(self, request: gr.Request) -> str:
        require(request, self.ctx, "export_votes")
        return str(self.votes.export_csv(download_dir("votes-") / "votes.csv", base_model=self.registry.base_name))

    def standings_frame(self, battles) -> pd.DataFrame:
        keys = ("model", "battles", "wins", "losses", "ties", "win_rate", "elo", "elo_ci", "bt", "bt_ci")
        rows = [[s.model, s.record.battles, s.record.wins, s.record.losses, s.record.ties,
                 round(s.record.win_rate, 3), round(s.elo, 1), f"{s.elo_ci[0]:.0f} – {s.elo_ci[1]:.0f}",
                 round(s.bt, 1), f"{s.bt_ci[0]:.0f} – {s.bt_ci[1]:.0f}"] for s in leaderboard(battles)]
        return pd.DataFrame(rows, columns=[t(f"chat.col_{k}", self.lang) for k in keys])

    def h2h_frame(self, battles) -> pd.DataFrame:
        models, score, games = head_to_head(battles)
        cells = [[("–" if s is None else f"{s:.2f} ({n})") for s, n in zip(row, count)]
                 for row, count in zip(score, games)]
        return pd.DataFrame(cells, columns=models, index=models).reset_index(names=t("chat.col_model", self.lang))


def decoding_controls(ctx: AppContext) -> list:
    from models.templates import DEFAULT_SYSTEM

    lang = ctx.lang
    with gr.Accordion(t("chat.decoding", lang), open=False):
        system = gr.Textbox(DEFAULT_SYSTEM if ctx.is_demo_model else "", label=t("chat.system", lang), lines=2)
        with gr.Row():
            max_new = gr.Slider(1, 2048, 256, step=1, label=t("chat.max_new_tokens", lang))
            temperature = gr.Slider(0.0, 2.0, 0.0, step=0.05, label=t("chat.temperature", lang))
            top_p = gr.Slider(0.05, 1.0, 1.0, step=0.05, label=t("chat.top_p", lang))
        with gr.Row():
            top_k = gr.Slider(0, 200, 0, step=1, label=t("chat.top_k", lang))
            rep = gr.Slider(1.0, 2.0, 1.0, step=0.01, label=t("chat.repetition_penalty", lang))
            seed = gr.Number(0, precision=0, minimum=0, label=t("chat.seed", lang))
    return [system, max_new, temperature, top_p, top_k, rep, seed]


def build_side_by_side(h: ChatHandlers, decoding: list) -> None:
    lang, choices = h.lang, h.choices()
    usable = [name for _, name in choices]
    histories = gr.State({})
    with gr.Row():
        models = gr.CheckboxGroup(choices, value=usable[:MAX_PANES], label=t("chat.models", lang),
                                  info=t("chat.models_info", lang), scale=4, elem_id="chat-models")
        refresh = gr.Button(t("chat.refresh", lang), scale=1, size="sm")
    with gr.Accordion(t("chat.model_table", lang), open=False):
        table = gr.Dataframe(h.model_table(), interactive=False, wrap=True)
    build_manage(h, table)
    with gr.Row(equal_height=True):
        panes = [gr.Chatbot(label=m, visible=i < len(usable), height=420, buttons=["copy", "copy_all"],
                            elem_id=f"chat-pane-{i}") for i, m in enumerate((usable + [""] * MAX_PANES)[:MAX_PANES])]
    prompt = gr.Textbox(label=t("chat.prompt", lang), placeholder=t("chat.prompt_placeholder", lang), lines=2,
                        elem_id="chat-prompt")
    with gr.Row():
        send = gr.Button(t("chat.send", lang), variant="primary")
        stop = gr.Button(t("chat.stop", lang), variant="stop")
        again = gr.Button(t("chat.regenerate", lang))
        clear = gr.Button(t("chat.clear", lang))
    status = gr.Markdown(elem_id="chat-status")
    run = dict(concurrency_limit=GENERATE_CONCURRENCY, concurrency_id="chat_generate", show_progress="hidden")
    outputs = [histories, prompt, status, *panes, table]
    # After an answer the footer shows at once which models are now in memory (ui/footer.REFRESH_JS).
    send.click(h.send, [prompt, models, *decoding, histories], outputs, api_name="chat_send", **run).then(
        None, js=REFRESH_JS)
    prompt.submit(h.send, [prompt, models, *decoding, histories], outputs, api_name=False, **run).then(
        None, js=REFRESH_JS)
    again.click(h.regenerate, [models, *decoding, histories], outputs, api_name="chat_regenerate", **run).then(
        None, js=REFRESH_JS)
    # Stop runs outside the queue, at once, even while this session's own request holds its place in line.
    stop.click(h.stop, None, status, api_name="chat_stop", concurrency_limit=None, queue=False)
    clear.click(h.clear, models, [histories, status, *panes], api_name="chat_clear")
    models.change(h.select, [models, histories], panes, api_name="chat_select")
    refresh.click(h.refresh, models, [models, table], api_name="chat_models")


def build_manage(h: ChatHandlers, table: gr.Dataframe) -> None:
    """The admin's load / unload box: hidden until the page's load event finds that the user may manage models."""
    lang = h.lang
    with gr.Accordion(t("models.manage", lang), open=False, visible=False, elem_id="models-manage") as box:
        gr.Markdown(h.manage_intro)
        with gr.Row():
            name = gr.Dropdown(h.registry.usable_models(), value=None, allow_custom_value=True,
                               label=t("models.name", lang), scale=4)
            load = gr.Button(t("models.load", lang), scale=1)
            unload = gr.Button(t("models.unload", lang), scale=1)
        note = gr.Markdown(elem_id="models-status")
    load.click(h.load_model, name, [note, table], api_name="models_load")
    unload.click(h.unload_model, name, [note, table], api_name="models_unload")
    gr.on(None, h.manage_box, None, [box, name], api_visibility="private", concurrency_limit=None,
          show_progress="hidden")  # no trigger and no inputs: the page's load


def build_blind(h: ChatHandlers, decoding: list) -> None:
    lang = h.lang
    gr.Markdown(t("chat.blind_intro", lang))
    battle = gr.State(None)
    new = gr.Button(t("chat.blind_new", lang), variant="primary")
    with gr.Row(equal_height=True, elem_id="blind-panes"):  # stacked on a phone (ui/layout.PAGE_CSS)
        pane_a = gr.Chatbot(label=t("chat.pane_a", lang), height=380, buttons=["copy"], elem_id="blind-pane-a")
        pane_b = gr.Chatbot(label=t("chat.pane_b", lang), height=380, buttons=["copy"], elem_id="blind-pane-b")
    prompt = gr.Textbox(label=t("chat.prompt", lang), placeholder=t("chat.prompt_placeholder", lang), lines=2,
                        elem_id="blind-prompt")
    with gr.Row():
        send = gr.Button(t("chat.send", lang), variant="primary", elem_id="blind-send")
        stop = gr.Button(t("chat.stop", lang), variant="stop")
    with gr.Row():
        buttons = [gr.Button(t(f"chat.vote_{o}", lang), interactive=False) for o in OUTCOMES]
    status = gr.Markdown(elem_id="blind-status")
    outcome = gr.Textbox(visible=False)  # the API's way to vote: /blind_vote with "a", "b", "tie" or "both_bad"
    run = dict(concurrency_limit=GENERATE_CONCURRENCY, concurrency_id="chat_generate", show_progress="hidden")
    new.click(h.blind_new, None, [battle, pane_a, pane_b, status, *buttons], api_name="blind_new")
    blind_outputs = [battle, prompt, pane_a, pane_b, status, *buttons]
    send.click(h.blind_send, [prompt, *decoding, battle], blind_outputs, api_name="blind_send", **run).then(
        None, js=REFRESH_JS)
    prompt.submit(h.blind_send, [prompt, *decoding, battle], blind_outputs, api_name=False, **run).then(
        None, js=REFRESH_JS)
    stop.click(h.blind_stop, None, status, api_name="blind_stop", concurrency_limit=None, queue=False)
    vote_outputs = [battle, status, pane_a, pane_b, *buttons]
    outcome.change(h.blind_vote, [outcome, battle], vote_outputs, api_name="blind_vote")
    for o, button in zip(OUTCOMES, buttons):
        button.click(h.vote_with(o), [battle], vote_outputs, api_name=False)


def build_leaderboard(h: ChatHandlers, tab: gr.Tab) -> None:
    lang = h.lang
    gr.Markdown(t("chat.board_intro", lang))
    refresh = gr.Button(t("chat.board_refresh", lang), variant="primary")
    summary = gr.Markdown(elem_id="board-summary")
    chart = gr.HTML(elem_id="board-chart")  # ratings with 95% intervals; the tables below give the numbers
    standings = gr.Dataframe(label=t("chat.board_standings", lang), interactive=False)
    h2h = gr.Dataframe(label=t("chat.board_h2h", lang), interactive=False)
    csv = gr.File(label=t("chat.board_csv", lang), interactive=False)
    refresh.click(h.board, None, [summary, standings, h2h, csv], api_name="leaderboard").then(
        h.board_chart, None, chart, api_visibility="private", show_progress="hidden")
    tab.select(h.board, None, [summary, standings, h2h, csv], api_name=False).then(  # fresh whenever it is opened
        h.board_chart, None, chart, api_visibility="private", show_progress="hidden")
    with gr.Accordion(t("chat.board_export", lang), open=False, visible=False, elem_id="votes-export") as box:
        gr.Markdown(t("chat.board_export_intro", lang))
        export = gr.Button(t("chat.board_export_button", lang))
        export_file = gr.File(label=t("chat.board_export_file", lang), interactive=False)
    export.click(h.export_votes, None, export_file, api_name="votes_export")
    gr.on(None, h.export_box, None, box, api_visibility="private", concurrency_limit=None,
          show_progress="hidden")  # no trigger and no inputs: the page's load


def build(ctx: AppContext) -> None:
    handlers = ChatHandlers(ctx)
    gr.Markdown(t("chat.intro", ctx.lang))
    decoding = decoding_controls(ctx)
    with gr.Tabs():
        with gr.Tab(t("chat.mode_side", ctx.lang), id="chat-side"):
            build_side_by_side(handlers, decoding)
        with gr.Tab(t("chat.mode_blind", ctx.lang), id="chat-blind"):
            build_blind(handlers, decoding)
        with gr.Tab(t("chat.mode_board", ctx.lang), id="chat-board") as board_tab:
            build_leaderboard(handlers, board_tab)
