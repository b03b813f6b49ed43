"""`vjm worker module:function`: run a handler as a processor (videojobs.Worker) until SIGTERM or Ctrl-C, on
the database or, with `--api URL --token T`, over the HTTP API with no database connection;
`vjm workers`: the registry of workers (running, stopped, lost)."""

from __future__ import annotations

import argparse
import importlib
import os

from rich.table import Table

from ..errors import ValidationError
from ..worker import ApiAccess, Worker
from .render import make_console, when
from .session import add_database_option, add_json_option, open_manager, print_json, settings_of


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `worker` and `workers` commands."""
    register_workers(sub)
    parser = sub.add_parser(
        "worker", help="run a job handler (module:function) as a processor",
        description="Claim queued jobs and run them through an async handler `(job, ctx) -> output paths`. "
                    "SIGTERM or Ctrl-C: stop claiming, let running handlers finish for --shutdown-timeout "
                    "seconds, then cancel and release them; a second signal exits at once.")
    parser.add_argument("handler_path", metavar="MODULE:FUNCTION", help="the handler, e.g. myapp.encode:transcode")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs run at once (default 1)")
    parser.add_argument("--platform", dest="platforms", action="append", metavar="PLATFORM",
                        help="claim only jobs of this platform (repeatable; default all)")
    parser.add_argument("--lease", type=float, default=60.0, metavar="SECONDS",
                        help="lease of each started job, renewed every third (default 60)")
    parser.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long running handlers may finish after SIGTERM (default 30)")
    parser.add_argument("--poll-interval", type=float, metavar="SECONDS",
                        help="how often an idle worker looks for work (default 1; with --api, the pause between "
                             "two long-polled claims, default 0.05)")
    parser.add_argument("--worker-id", help="the id start events and leases name (default host:pid:random)")
    parser.add_argument("--api", metavar="URL",
                        help="run over the HTTP API at URL (e.g. http://vjm.internal:8000) with a service token: "
                             "no database connection at all")
    parser.add_argument("--token", metavar="JWT", default=os.environ.get("VJM_API_TOKEN"),
                        help="the service_role token for --api (default VJM_API_TOKEN)")
    add_database_option(parser)
    parser.set_defaults(handler=run)


def load_handler(path: str):
    """The function `module:function` names (ValidationError if it cannot be found)."""
    module_name, _, function_name = path.partition(":")
    if not module_name or not function_name:
        raise ValidationError(f"{path!r} is not MODULE:FUNCTION", field="handler")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"cannot load {path}: {exc}", field="handler") from exc
    if not callable(function):
        raise ValidationError(f"{path} is not a function", field="handler")
    return function


def api_access(args: argparse.Namespace) -> ApiAccess:
    """--api and --token (a service token is needed: the processor endpoints take no other)."""
    if not args.token:
        raise ValidationError("--api needs a service_role token: --token or VJM_API_TOKEN", field="token")
    if getattr(args, "database_url", None):
        raise ValidationError("--api runs without a database: give --api or --database-url, not both",
                              field="database_url")
    return ApiAccess(args.api, args.token)


async def run(args: argparse.Namespace) -> int:
    """Run the worker until it is stopped; 0 after a graceful stop."""
    options = {"concurrency": args.concurrency, "lease_seconds": args.lease,
               "shutdown_timeout": args.shutdown_timeout, "platforms": args.platforms}
    if args.poll_interval is not None:
        options["poll_interval"] = args.poll_interval
    if args.worker_id:
        options["worker_id"] = args.worker_id
    worker = Worker(api=api_access(args), **options) if args.api else Worker(settings_of(args).database_url, **options)
    worker.handler(load_handler(args.handler_path))
    over = f" over {args.api}" if args.api else ""
    print(f"vjm worker {worker.config.worker_id}: running {args.handler_path}{over}; SIGTERM or Ctrl-C stops",
          flush=True)
    await worker.run()
    print("vjm worker: stopped", flush=True)
    return 0


def register_workers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("workers", help="the workers: running, stopped, or lost (no heartbeat for 3 leases)",
                            description="Every registered worker: host, pid, slots in use, platforms, version, "
                                        "when it was last heard from, and its state.")
    add_database_option(parser)
    add_json_option(parser)
    parser.set_defaults(handler=list_workers)


async def list_workers(args: argparse.Namespace) -> int:
    """Print the registry."""
    async with open_manager(args) as manager:
        workers = await manager.workers.list()
    if args.json:
        print_json(workers)
        return 0
    table = Table(title="workers")
    for column in ("worker", "state", "host", "pid", "running", "platforms", "last seen", "version"):
        table.add_column(column)
    for w in workers:
        table.add_row(w.worker_id, w.state, w.host, str(w.pid), f"{w.running}/{w.concurrency}",
                      ", ".join(w.platforms or ["all"]), when(w.last_seen_at, precise=True), w.version)
    make_console().print(table)
    return 0
