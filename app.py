"""Start the app: `python app.py [--model M] [--host H] [--port P] ...`. Launch only; the UI lives under ui/.

Every flag has an environment variable (for Docker); README.md's "Hosting on a shared server" lists them all.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import safeio
from hosting.model_refs import parse_model_roots
from hosting.roles import Policy
from hosting.users import USERS_FILE_ENV, UsersError, UserStore
from models.refs import current_hub
from models.remote.endpoints import parse_endpoint_flags
from ui.context import AppContext, with_services
from ui.zerogpu import start_zerogpu

_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def upload_size(text: str) -> int | None:
    """ "50mb" -> bytes; "none" -> no limit."""
    value = text.strip().lower().replace(" ", "")
    if value in ("none", "0", "unlimited"):
        return None
    digits = value.rstrip("kmgb")
    unit = value[len(digits):] or "b"
    try:
        number = float(digits)
    except ValueError:
        number = -1.0
    if unit not in _SIZE_UNITS or number <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 500kb, 50mb, 2gb or none")
    return int(number * _SIZE_UNITS[unit])


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value
    return parse


def proxy_list(text: str) -> str:
    """ "127.0.0.1, 10.0.0.0/8" -> the same, checked; "" -> no proxy is trusted."""
    items = []
    for item in (item.strip() for item in text.split(",")):
        try:  # written as uvicorn reads them (it would take a malformed one as a literal that never matches)
            if item:
                items.append(str(ipaddress.ip_network(item, strict=False) if "/" in item
                                 else ipaddress.ip_address(item)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not an IP address or network such as 127.0.0.1 or "
                                             "10.0.0.0/8") from None
    return ",".join(items)


def fail(message: str, status: safeio.ExitStatus) -> NoReturn:
    """End the start with one line and the shared exit status (safeio.ExitStatus; the README's table)."""
    print(f"medtune: {message}", file=sys.stderr, flush=True)
    sys.exit(int(status))


def env_bool(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        fail(f"{name}={value!r} is not one of 1/0, true/false, yes/no, on/off", safeio.ExitStatus.USAGE)
    return value in _TRUE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Medical model workbench (Gradio app)",
                                     formatter_class=safeio.HelpFormatter,
                                     epilog=safeio.exit_epilog(safeio.ExitStatus.OK, safeio.ExitStatus.INTERNAL,
                                                               safeio.ExitStatus.USAGE,
                                                               safeio.ExitStatus.INPUT_MALFORMED))
    # String defaults go through `type` like typed values, so a bad environment variable fails here with a message.
    parser.add_argument("--model", default=env("MEDTUNE_MODEL", "demo"),
                        help='base model: hub id, local directory, or "demo" (default; env MEDTUNE_MODEL)')
    # On a Hugging Face Space (SPACE_ID set) the app must answer on every interface, port 7860.
    parser.add_argument("--host", default=env("MEDTUNE_HOST", "0.0.0.0" if env("SPACE_ID") else "127.0.0.1"),
                        help="address to listen on; 0.0.0.0 for every interface (env MEDTUNE_HOST; default "
                             "127.0.0.1, or 0.0.0.0 on a Hugging Face Space)")
    parser.add_argument("--port", type=positive(int), default=env("MEDTUNE_PORT", "7860"), help="env MEDTUNE_PORT")
    parser.add_argument("--root-path", default=env("MEDTUNE_ROOT_PATH", ""),
                        help="public sub-path behind a reverse proxy that strips it, e.g. /medtune "
                             "(env MEDTUNE_ROOT_PATH)")
    parser.add_argument("--data-dir", default=env("MEDTUNE_DATA_DIR"),
                        help="where jobs, runs, votes, reports and the session key are kept "
                             "(env MEDTUNE_DATA_DIR; default ./runs)")
    parser.add_argument("--max-upload-size", type=upload_size, default=env("MEDTUNE_MAX_UPLOAD_SIZE", "200mb"),
                        help='largest file a user may upload, e.g. 50mb, or "none" (env MEDTUNE_MAX_UPLOAD_SIZE; '
                             "default 200mb)")
    parser.add_argument("--concurrency", type=positive(int), default=env("MEDTUNE_CONCURRENCY", "1"),
                        help="requests of one event run at once; more wait in line (env MEDTUNE_CONCURRENCY)")
    parser.add_argument("--score-concurrency", type=positive(int), default=env("MEDTUNE_SCORE_CONCURRENCY", "2"),
                        help="Score-tab requests run at once, apart from --concurrency, so one large file does not "
                             "hold up other users' scoring (env MEDTUNE_SCORE_CONCURRENCY; default 2)")
    parser.add_argument("--max-running-jobs", type=positive(int), default=env("MEDTUNE_MAX_RUNNING_JOBS", "1"),
                        help="training/evaluation jobs run at once from the shared queue "
                             "(env MEDTUNE_MAX_RUNNING_JOBS)")
    parser.add_argument("--memory-budget-gb", type=positive(float), default=env("MEDTUNE_MEMORY_BUDGET_GB"),
                        help="unload least-recently-used models beyond this many GiB (env MEDTUNE_MEMORY_BUDGET_GB; "
                             "default: no cap)")
    parser.add_argument("--lang", choices=["en", "zh"], default=env("MEDTUNE_LANG", "en"),
                        help="language at /; the other one is served at /zh/ or /en/ (env MEDTUNE_LANG)")
    add_sharing_arguments(parser)
    safeio.add_arguments(parser)  # --max-rows, --max-field-length, ...: bounds on every data file read
    return parser.parse_args(argv)


def add_sharing_arguments(parser: argparse.ArgumentParser) -> None:
    """Who may sign in and what they may name: users, proxies, roles, model folders, servers, the hub."""
    env = os.environ.get
    parser.add_argument("--users", default=env(USERS_FILE_ENV),
                        help="users file, which turns logins on (env MEDTUNE_USERS_FILE; default "
                             "<data dir>/users.yaml if it exists). MEDTUNE_ADMIN_PASSWORD and MEDTUNE_USERS add users")
    parser.add_argument("--trusted-proxy", type=proxy_list, default=env("MEDTUNE_TRUSTED_PROXY", ""),
                        help="addresses or networks of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
                             "are believed, e.g. 127.0.0.1 or 10.0.0.0/8 (env MEDTUNE_TRUSTED_PROXY; default none: "
                             "the socket's address is the client's)")
    parser.add_argument("--members-can-train", action=argparse.BooleanOptionalAction,
                        default=env_bool("MEDTUNE_MEMBERS_CAN_TRAIN"),
                        help="let the member role start training (env MEDTUNE_MEMBERS_CAN_TRAIN=1; default off)")
    parser.add_argument("--model-roots", default=env("MEDTUNE_MODEL_ROOTS", ""),
                        help=f"directories users may name as models, separated by '{os.pathsep}' (env "
                             "MEDTUNE_MODEL_ROOTS; default with logins: the data dir, the medtune cache and the "
                             "Hugging Face cache; without logins and without this flag: any). Hub ids (owner/name) "
                             "are always allowed")
    parser.add_argument("--endpoint", action="append", default=env_list("MEDTUNE_ENDPOINTS"), metavar="NAME=URL",
                        help="an OpenAI-compatible server whose models users may pick (vLLM, SGLang, LMDeploy, "
                             "transformers serve, a hosted API), e.g. gpu=http://gpu-box:8000/v1 (repeatable; env "
                             "MEDTUNE_ENDPOINTS, space-separated). More in <data dir>/endpoints.yaml")
    parser.add_argument("--endpoint-key", action="append", default=env_list("MEDTUNE_ENDPOINT_KEYS"),
                        metavar="NAME=ENV_VAR", help="the environment variable holding an endpoint's API key "
                                                     "(never the key itself; env MEDTUNE_ENDPOINT_KEYS)")
    parser.add_argument("--hub", default=env("MEDTUNE_HUB"),
                        help="where hub ids download from: huggingface (default; HF_ENDPOINT names a mirror) or "
                             "modelscope (pip install -e '.[modelscope]') (env MEDTUNE_HUB)")


def env_list(name: str) -> list[str]:
    return os.environ.get(name, "").split()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def logins_hint(data_dir: Path) -> str:
    """How to turn logins on: the users file is read at start, so one created under a running open app changes
    nothing until the restart (the README says so)."""
    return (f"python -m hosting.users add NAME --role admin --data-dir {data_dir}   then restart this app "
            "(a users file created while it runs is not picked up)")


def warn_open_to_network(host: str, port: int, data_dir: Path) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n"
          f"!!  WARNING: listening on {host}:{port} with NO LOGIN configured.\n"
          "!!  Anyone who can reach this address is admin: they can train, load models and stop any job.\n"
          f"!!  Add users:  {logins_hint(data_dir)}\n"
          "!!  or set MEDTUNE_ADMIN_PASSWORD / MEDTUNE_USERS, or listen on --host 127.0.0.1.\n"
          f"{bar}\n", file=sys.stderr, flush=True)


def prepare_demo_model() -> None:
    """Build the demo model before serving, so the first user does not wait for it inside a request."""
    import time

    from finetune.demo_model import cache_root, demo_model_cached, demo_model_dir

    if demo_model_cached():
        print(f"Demo model: cached at {demo_model_dir()}", flush=True)
        return
    # The figure is the first build measured on a 2-core CPU (README); said only when it is about to happen.
    print(f"Building the built-in demo model (once: about 20 s on an idle CPU, more on a busy one; cached under "
          f"{cache_root()})...",
          flush=True)
    start = time.monotonic()
    path = demo_model_dir()
    print(f"Demo model ready in {time.monotonic() - start:.0f} s: {path}", flush=True)


def clean_adapter_temp_dirs(data_dir: Path) -> None:
    """A job killed while writing its adapter leaves `.NAME.tmp-…` in adapters/: remove those whose writer is gone
    (never listed as models anyway, but they take disk space)."""
    from finetune.atomic import clean_stale_temp_dirs

    for path in clean_stale_temp_dirs(data_dir / "adapters"):
        print(f"Removed an adapter left half-written by a stopped job: {path}", flush=True)


def load_users(args: argparse.Namespace, data_dir: Path) -> UserStore | None:
    default = data_dir / "users.yaml"
    users_file = Path(args.users) if args.users else (default if default.exists() else None)
    try:
        return UserStore.from_settings(users_file)
    except UsersError as exc:  # the users file (or MEDTUNE_USERS) names its line and field
        fail(str(exc), safeio.ExitStatus.INPUT_MALFORMED)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        limits = safeio.from_args(args)
    except ValueError as exc:  # a bad MEDTUNE_MAX_* value
        fail(str(exc), safeio.ExitStatus.USAGE)
    safeio.set_current(limits)
    os.environ.update(safeio.limits.to_env(limits))  # training and evaluation job processes read within them too
    data_dir = Path(args.data_dir) if args.data_dir else AppContext().data_dir  # else the default (env or ./runs)
    users = load_users(args, data_dir)
    if args.hub:  # the registry, fine-tune jobs and merges resolve hub ids through models/refs.py, which reads this
        os.environ["MEDTUNE_HUB"] = args.hub
    try:
        endpoints = tuple(parse_endpoint_flags(args.endpoint, args.endpoint_key))
        current_hub(args.hub)
    except ValueError as exc:  # EndpointError, HubError: the message names the flag
        fail(str(exc), safeio.ExitStatus.USAGE)
    ctx = AppContext(model=args.model, lang=args.lang, data_dir=data_dir, users=users, endpoints=endpoints,
                     policy=Policy(members_can_train=args.members_can_train),
                     max_running_jobs=args.max_running_jobs, memory_budget_gb=args.memory_budget_gb,
                     model_roots=parse_model_roots(args.model_roots, data_dir) if args.model_roots else None,
                     score_concurrency=args.score_concurrency)
    try:
        ctx.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the data directory {ctx.data_dir}: {exc}", safeio.ExitStatus.INTERNAL)
    clean_adapter_temp_dirs(ctx.data_dir)
    ctx = with_services(ctx)  # the job scheduler with its runners, and the pages' jobs: once, shared by every tab
    open_warning = users is None and not is_loopback(args.host)
    if open_warning:
        warn_open_to_network(args.host, args.port, ctx.data_dir)
    elif users is None:
        print(f"No login: everyone who reaches this address is the local admin. To turn logins on: "
              f"{logins_hint(ctx.data_dir)}", flush=True)
    if ctx.is_demo_model:
        prepare_demo_model()
    if start_zerogpu(ctx.model, ctx.data_dir):
        print("ZeroGPU: chat answers and evaluation batches run on a lent GPU; training is off", flush=True)
    serve(ctx, args, open_warning)


def serve(ctx: AppContext, args: argparse.Namespace, open_warning: bool) -> None:
    import uvicorn
    import logging

    # Unexpected handler errors are logged with their traceback and the request id the page shows (ui/errors.py).
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)

    from ui.server import ServerSettings, create_server

    settings = ServerSettings(max_file_size=args.max_upload_size, concurrency=args.concurrency,
                              open_warning=open_warning)
    server = create_server(ctx, settings)
    other = "zh" if ctx.lang == "en" else "en"
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    logins = f"logins on ({len(ctx.users.names())} users)" if ctx.users else "no login"
    print(f"Running on http://{shown}:{args.port}/ (the {other} page at /{other}/; {logins})", flush=True)
    # Open queue connections would hold a graceful shutdown forever: give them a few seconds after SIGTERM.
    # The root path goes to uvicorn, which adds it to every request's scope: Gradio builds its URLs from that.
    # Proxy headers only from the proxies the admin names: uvicorn would otherwise believe any X-Forwarded-For
    # sent from 127.0.0.1, and every client of a local proxy could choose its own address (and escape the
    # per-address login limit).
    uvicorn.run(server, host=args.host, port=args.port, root_path=urlsplit(args.root_path).path.rstrip("/"),
                log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                proxy_headers=bool(args.trusted_proxy), forwarded_allow_ips=args.trusted_proxy or None)


if __name__ == "__main__":
    main()
