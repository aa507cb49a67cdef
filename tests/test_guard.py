"""Sessions and cached files belong to their user (ui/guard.py; issue 11 item 3).

The guard's bookkeeping is tested on its own and behind a tiny ASGI app; the reproductions of the attack (a second
client reusing a member's session hash, deep links, another user's cached upload or download) run against the real
server (`python app.py` with a users file).
"""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import Client, handle_file
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from server_fixtures import password, start_server, write_users
from ui.guard import Owners, SessionGuard


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_belongs_to_the_first_user_who_uses_it():
    owners = Owners(ttl_s=60, per_user=10)
    assert owners.claim("h1", "alice") and owners.claim("h1", "alice")
    assert not owners.claim("h1", "gus")
    assert owners.owns("h1", "alice") and not owners.owns("h1", "gus")


def test_idle_keys_are_forgotten_and_told_but_an_open_page_is_kept():
    clock, forgotten, live = Clock(), [], {"open"}
    owners = Owners(ttl_s=100, per_user=10, on_forget=forgotten.append, keep=live.__contains__, clock=clock)
    owners.claim("idle", "alice")
    owners.claim("open", "alice")
    clock.now = 101
    assert owners.claim("idle", "gus")  # forgotten: the guard also drops gradio's state for it (see below)
    assert forgotten == ["idle"]
    assert not owners.claim("open", "gus")


def test_one_user_flooding_new_hashes_forgets_only_her_own():
    forgotten = []
    owners = Owners(ttl_s=3600, per_user=5, on_forget=forgotten.append)
    owners.claim("alice-page", "alice")
    for i in range(50):
        owners.claim(f"gus-{i}", "gus")
    assert owners.owns("alice-page", "alice") and not owners.claim("alice-page", "gus")
    assert len(owners.by_user["gus"]) == 5 and len(owners.owner) == 6  # bounded: 5 per user
    assert forgotten == [f"gus-{i}" for i in range(45)]


# ---- the middleware behind a stand-in app: every place gradio 6.31 reads a session hash ------------------------

@pytest.fixture()
def guarded(tmp_path):
    upload_dir = tmp_path / "gradio"
    (upload_dir / "abc").mkdir(parents=True)
    cached = upload_dir / "abc" / "report.json"
    cached.write_text("{}")
    seen = []

    async def echo(request):
        seen.append((request.url.path, await request.body()))
        return JSONResponse({"ok": True})

    async def join(request):
        seen.append((request.url.path, await request.body()))
        return JSONResponse({"event_id": "ev-1"})

    async def upload(request):
        return JSONResponse([str(cached)])

    async def events(request):
        async def lines():
            yield b'data: {"msg": "process_starts"}\n\n'
            yield ('data: ' + json.dumps({"msg": "process_completed", "output": {"data": [
                {"path": str(upload_dir / "abc" / "out.csv"), "meta": {"_type": "gradio.FileData"}}]}})).encode()
            yield b"\n\n"
        return StreamingResponse(lines(), media_type="text/event-stream")

    routes = [Route("/gradio_api/queue/join", join, methods=["POST"]),
              Route("/gradio_api/upload", upload, methods=["POST"]),
              Route("/gradio_api/queue/data", events),
              Route("/{path:path}", echo, methods=["GET", "POST"])]
    app = SessionGuard(Starlette(routes=routes), user_of=lambda request: request.headers.get("x-user"),
                       upload_dir=str(upload_dir))
    (upload_dir / "abc" / "out.csv").write_text("a,b\n")
    with TestClient(app) as client:
        yield client, app, upload_dir, seen


def as_user(name: str | None) -> dict:
    return {"x-user": name} if name else {}


def test_every_place_a_session_hash_enters_is_bound_to_its_user(guarded):
    client, _, _, seen = guarded
    assert client.post("/gradio_api/queue/join", json={"session_hash": "h", "fn_index": 0, "data": []},
                       headers=as_user("alice")).status_code == 200
    assert seen[-1][1]  # the body the guard read reached the app whole
    refused = [("POST", "/gradio_api/queue/join", {"session_hash": "h", "data": []}),
               ("POST", "/zh/gradio_api/run/chat_select", {"session_hash": "h", "data": []}),
               ("POST", "/gradio_api/call/chat_select", {"session_hash": "h", "data": []}),
               ("POST", "/gradio_api/cancel", {"session_hash": "h", "fn_index": 0, "event_id": "x"}),
               ("POST", "/gradio_api/component_server", {"session_hash": "h", "component_id": 1, "fn_name": "f",
                                                         "data": None}),
               ("GET", "/gradio_api/queue/data?session_hash=h", None),
               ("GET", "/gradio_api/heartbeat/h", None),
               ("GET", "/gradio_api/stream/h/0/3/playlist.m3u8", None)]
    for method, path, body in refused:
        response = client.request(method, path, json=body, headers=as_user("gus"))
        assert response.status_code == 403, (path, response.text)
        assert client.request(method, path, json=body).status_code == 401, path  # no session at all
    assert client.get("/gradio_api/queue/data?session_hash=h", headers=as_user("alice")).status_code == 200


def test_event_ids_and_upload_ids_are_their_users(guarded):
    client, _, _, _ = guarded
    client.post("/gradio_api/queue/join", json={"session_hash": "h2", "data": []}, headers=as_user("alice"))
    assert client.get("/gradio_api/call/chat_select/ev-1", headers=as_user("gus")).status_code == 403
    assert client.post("/gradio_api/stream/ev-1", json={"session_hash": "g"}, headers=as_user("gus")).status_code \
        == 403
    assert client.get("/gradio_api/call/chat_select/ev-1", headers=as_user("alice")).status_code == 200
    assert client.get("/gradio_api/upload_progress?upload_id=u1", headers=as_user("alice")).status_code == 200
    assert client.get("/gradio_api/upload_progress?upload_id=u1", headers=as_user("gus")).status_code == 403


def test_deep_links_are_closed_and_unreadable_bodies_refused(guarded):
    client, _, _, _ = guarded
    assert client.get("/gradio_api/deep_link?session_hash=h", headers=as_user("alice")).status_code == 404
    assert client.get("/?deep_link=abc", headers=as_user("alice")).status_code == 404
    assert client.get("/config?deep_link=abc", headers=as_user("alice")).status_code == 404
    multipart = client.post("/gradio_api/component_server", files={"x": ("a", b"1")},
                            data={"session_hash": "h", "component_id": "1", "fn_name": "f"}, headers=as_user("gus"))
    assert multipart.status_code == 403


def test_cached_files_are_served_to_the_user_they_were_handed_to(guarded):
    client, _, upload_dir, _ = guarded
    uploaded, output = upload_dir / "abc" / "report.json", upload_dir / "abc" / "out.csv"
    assert client.get(f"/gradio_api/file={uploaded}", headers=as_user("alice")).status_code == 403  # not yet hers
    assert client.post("/gradio_api/upload", files={"files": ("r.json", b"{}")},
                       headers=as_user("alice")).json() == [str(uploaded)]
    with client.stream("GET", "/gradio_api/queue/data?session_hash=s", headers=as_user("alice")) as stream:
        assert "out.csv" in "".join(stream.iter_text())
    for path in (uploaded, output):
        assert client.get(f"/gradio_api/file={path}", headers=as_user("alice")).status_code == 200
        assert client.get(f"/gradio_api/file/{path}", headers=as_user("alice")).status_code == 200
        assert client.get(f"/gradio_api/file={path}", headers=as_user("gus")).status_code == 403
        sneaky = f"/gradio_api/file={upload_dir}/abc/../abc/{path.name}"
        assert client.get(sneaky, headers=as_user("gus")).status_code == 403
    # Her file's path as another user's input (a File component's value) is refused too.
    forged = {"session_hash": "gus-page", "data": [{"path": str(uploaded), "meta": {"_type": "gradio.FileData"}}]}
    assert client.post("/gradio_api/queue/join", json=forged, headers=as_user("gus")).status_code == 403
    assert client.post("/gradio_api/queue/join", json={**forged, "session_hash": "alice-page"},
                       headers=as_user("alice")).status_code == 200


# ---- reproductions against the real server -------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory, medtune_home, demo_model):
    root = tmp_path_factory.mktemp("guard-server")
    users = write_users(root / "users.yaml")
    server = start_server(root / "data", medtune_home, "--users", str(users))
    yield server
    server.stop()


def web(server, name: str) -> httpx.Client:
    """A signed-in HTTP client (the login cookie), as a script would use the API by hand."""
    client = httpx.Client(base_url=server.url, timeout=60)
    assert client.post("/login", data={"username": name, "password": password(name)}).status_code == 200
    return client


def dependency_ids(client: httpx.Client) -> dict[str, int]:
    return {d["api_name"]: d["id"] for d in client.get("/config").json()["dependencies"] if d.get("api_name")}


def test_a_second_client_reusing_a_members_session_hash_cannot_read_or_clear_her_chat(server):
    alice = Client(server.url, auth=("alice", password("alice")), verbose=False)
    alice.predict("my patient has HIV", ["demo"], "", 2, 0, 1, 0, 1, 0, api_name="/chat_send")
    her_chat = alice.predict(["demo"], api_name="/chat_select")
    assert "my patient has HIV" in json.dumps(her_chat, ensure_ascii=False)

    gus = Client(server.url, auth=("gus", password("gus")), verbose=False)
    gus.session_hash = alice.session_hash  # the attack: her hash, leaked
    for api in ("/chat_select", "/chat_clear"):
        with pytest.raises(Exception) as refused:
            gus.predict(["demo"], api_name=api)
        assert "403" in str(refused.value) or "another user" in str(refused.value)
    # Raw requests with the forged hash: the queue, its event stream, and a deep link of her page.
    raw = web(server, "gus")
    fn = dependency_ids(raw)["chat_select"]
    join = raw.post("/gradio_api/queue/join", json={"data": [["demo"]], "fn_index": fn,
                                                    "session_hash": alice.session_hash})
    assert join.status_code == 403
    assert raw.get("/gradio_api/queue/data", params={"session_hash": alice.session_hash}).status_code == 403
    deep = raw.get("/gradio_api/deep_link", params={"session_hash": alice.session_hash})
    assert deep.status_code == 404 and "HIV" not in deep.text
    assert httpx.get(f"{server.url}/gradio_api/heartbeat/{alice.session_hash}").status_code == 401  # no session
    # Her chat is still there for her.
    assert "my patient has HIV" in json.dumps(alice.predict(["demo"], api_name="/chat_select"), ensure_ascii=False)


def test_another_users_cached_upload_or_download_is_refused_while_the_owner_gets_it(server, tmp_path):
    alice, gus = web(server, "alice"), web(server, "gus")
    upload = alice.post("/gradio_api/upload", files={"files": ("notes.jsonl", b'{"input": "secret", "output": "x"}\n')})
    assert upload.status_code == 200
    uploaded = upload.json()[0]
    assert alice.get(f"/gradio_api/file={uploaded}").status_code == 200
    assert gus.get(f"/gradio_api/file={uploaded}").status_code == 403

    reference = tmp_path / "ref.jsonl"
    reference.write_text('{"id": "1", "input": "q", "output": "头痛"}\n', encoding="utf-8")
    scorer = Client(server.url, auth=("alice", password("alice")), verbose=False)
    *_, downloads = scorer.predict("none", handle_file(str(reference)), handle_file(str(reference)),
                                   "auto", "", api_name="/score_submission")
    assert downloads  # gradio_client fetched her report files as her: the owner gets them
    answer = alice.post("/gradio_api/call/score_submission", json={"data": [
        "none", {"path": uploaded, "meta": {"_type": "gradio.FileData"}},
        {"path": uploaded, "meta": {"_type": "gradio.FileData"}}, "auto", ""]})
    assert answer.status_code == 200, answer.text
    stream = alice.get(f"/gradio_api/call/score_submission/{answer.json()['event_id']}").text
    report = json.loads(stream.split("event: complete\ndata: ")[1].split("\n")[0])[-1]  # the downloads
    assert report
    for item in report:
        assert alice.get(f"/gradio_api/file={item['path']}").status_code == 200
        assert gus.get(f"/gradio_api/file={item['path']}").status_code == 403
    # gus naming her upload as his own input is refused before any handler reads it.
    stolen = gus.post("/gradio_api/call/score_submission", json={"data": [
        "none", {"path": uploaded, "meta": {"_type": "gradio.FileData"}},
        {"path": uploaded, "meta": {"_type": "gradio.FileData"}}, "auto", ""]})
    assert stolen.status_code == 403
