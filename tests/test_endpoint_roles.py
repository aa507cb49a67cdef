"""Who may call which endpoint: every named API endpoint of the running app x each role (admin, member, guest) and no
session, against a table written here (issue 11). The endpoints come from the app's own API info, so a new endpoint
without a row fails `test_every_endpoint_has_a_row`.

"Allowed" means the role check let the call through: the handler answered, or refused the inputs for another reason
(the inputs below are chosen so that nothing heavy starts: no data for a training or an evaluation, an empty prompt).
"Refused" means the access text of ui/access.py (`access.denied`). Ownership of one job (stop, resume, details) is a
per-job rule, tested where jobs are (the rows here call with no job and must not be refused by role).
"""

from __future__ import annotations

import re

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from server_fixtures import password, start_server, write_users
from ui.strings import t

ROLES = {"admin": "admin", "member": "alice", "guest": "gus"}  # role -> a user of that role (server_fixtures.USERS)
ALL = {"admin": True, "member": True, "guest": True}
MEMBERS = {"admin": True, "member": True, "guest": False}
ADMIN = {"admin": True, "member": False, "guest": False}
DEMO = ["demo"]

# endpoint -> (allowed per role, arguments). Rows marked PENDING depend on another part of issue 11 (named) and are
# expected to fail until it is merged; the lead drops the mark then.
TABLE: dict[str, tuple[dict, tuple]] = {
    "/score_submission": (ALL, ("none", None, None, "auto", "")),  # no files: "upload both files" after the check
    "/chat_send": (ALL, ("", DEMO)),
    "/chat_regenerate": (ALL, (DEMO,)),
    "/chat_stop": (ALL, ()),
    "/chat_clear": (ALL, (DEMO,)),
    "/chat_select": (ALL, (DEMO,)),
    "/chat_models": (ALL, (DEMO,)),
    "/blind_new": (ALL, ()),
    "/blind_send": (ALL, ("",)),
    "/blind_stop": (ALL, ()),
    "/blind_vote": (ALL, ("a",)),
    "/leaderboard": (ALL, ()),  # aggregates only, for all
    "/votes_export": (ADMIN, ()),  # every vote's prompts and conversations: the admin only
    "/models_load": (ADMIN, (None,)),
    "/models_unload": (ADMIN, (None,)),
    "/manage_intro": (ALL, ()),
    "/evaluate_run": (MEMBERS, (DEMO, [], None, "likelihood", 8, 0, 0, None)),  # no data: refused by role first, else "pick a data set"
    "/evaluate_stop": (ALL, ()),  # one's own evaluation only
    "/evaluate_predict": (MEMBERS, (DEMO, None, "output", "letters", "", "likelihood", 8, 8, "")),  # no test file
    "/score_what_if": (ALL, ("none", None, None)),  # no files: "upload both files" after the check
    "/evaluate_items": (ALL, (None,)),
    "/evaluate_models": (ALL, (DEMO,)),
    "/finetune_preview": (ADMIN, ("demo", None, "train_sample.jsonl", "auto", "", 256)),  # needs train (sec-readers)
    "/finetune_start": (ADMIN, ("demo", None, None, "auto", "")),  # no data: refused by role first, else "pick data"
    "/finetune_command": (ALL, ("demo", None, "train_sample.jsonl", "auto", "")),  # text only: loads and starts nothing
    "/finetune_stop": (ALL, (None,)),  # per job: owner or admin
    "/finetune_resume": (ALL, (None,)),  # per job: train role, owner or admin
    "/finetune_status": (ALL, (None,)),  # per job: details for owner and admin (sec-data)
    "/do_status": (ALL, (None,)),  # finetune_status after Start (sec-data: same rule)
    "/finetune_jobs": (ALL, (None,)),
    "/jobs_list": (ALL, (None,)),  # the queue's lines (owner, state, position) for all
    "/do_detail": (ALL, (None,)),  # per job: details for owner and admin (sec-data)
    "/jobs_cancel": (ALL, (None,)),  # per job: owner or admin
    "/jobs_resume": (ALL, (None,)),
    "/jobs_compare": (ALL, ([], None)),  # per job: owner or admin (no runs: "pick runs" after the role check)
    "/footer": (ALL, ()),
    "/refresh": (ALL, ()),  # the footer's text on page load
    "/picker_info": (ALL, ("Qwen/Qwen3-0.6B",)),  # sizes from config numbers; a folder only inside the model roots
    "/picker_catalog": (ALL, ()),
    "/picker_preset": (ALL, ("demo-lora",)),  # fills the form's settings, starts nothing
    "/picker_download": (ADMIN, ("Qwen/Qwen3-0.6B",)),  # fills the server's disk (offline here: "unavailable")
    "/picker_cancel": (ADMIN, ("Qwen/Qwen3-0.6B",)),
    "/picker_delete": (ADMIN, ("nobody/nothing",)),  # frees the server's disk
}
PENDING: dict[str, str] = {}  # api -> the branch that will make its row pass
DENIED = re.compile(re.escape(t("access.denied", "en")).replace(r"\{user\}", ".+").replace(r"\{role\}", r"\w+")
                    .replace(r"\{action\}", ".+"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, medtune_home, demo_model):
    root = tmp_path_factory.mktemp("roles-server")
    server = start_server(root / "data", medtune_home, "--users", str(write_users(root / "users.yaml")))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clients(server) -> dict[str, Client]:
    return {role: Client(server.url, auth=(name, password(name)), verbose=False) for role, name in ROLES.items()}


def call(client: Client, api: str, args: tuple):
    """(allowed, result): refused only by the access check's text; any other answer means the role got through."""
    try:
        return True, client.predict(*args, api_name=api)
    except AppError as exc:
        return not DENIED.search(str(exc)), None


def test_every_endpoint_has_a_row(server):
    cookie = httpx.post(f"{server.url}/login", data={"username": "admin", "password": password("admin")}).cookies
    named = set(httpx.get(f"{server.url}/gradio_api/info", cookies=cookie).json()["named_endpoints"])
    assert named == set(TABLE), f"without a row: {sorted(named - set(TABLE))}; gone: {sorted(set(TABLE) - named)}"


@pytest.mark.parametrize("api", [pytest.param(api, marks=pytest.mark.xfail(reason=PENDING[api], strict=False))
                                 if api in PENDING else api for api in TABLE])
def test_roles(clients, api):
    expected, args = TABLE[api]
    got = {}
    for role, client in clients.items():
        got[role], _ = call(client, api, args)
    assert got == expected


@pytest.mark.parametrize("route", ["call/{api}", "run/{api}", "queue/join"])
def test_no_session_is_refused_everywhere(server, route):
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for api in TABLE:
            body = {"data": [], "fn_index": 0, "session_hash": "anon"} if route == "queue/join" else {"data": []}
            response = anonymous.post(f"/gradio_api/{route.format(api=api.lstrip('/'))}", json=body)
            assert response.status_code in (401, 403), (api, route, response.status_code)
