"""A real PgBouncer (Debian's `pgbouncer`) in transaction pooling mode in front of a server: what
bench/pooler.py measures through and tests/pooler/ runs the suites through.

`.ci/run` installs it. It listens on a free TCP port and reaches the server over TCP or, for the
embedded server, its Unix socket. Every database of the server is served (`* = ...`), so each
test's or workload's database is reachable through it by name. `max_db_connections` caps the
server connections per database (tests/pooler/ runs 50 clients over 5 of them).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

SERVER_CONNECTIONS = 5  # per database: what the pooled suites share
LOGINS = ("vjm_app", "vjm_worker", "vjm_listener")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pgbouncer_binary() -> str | None:
    """Debian's pgbouncer, if installed."""
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.access(p, os.X_OK)), None)


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: the URL of any database of the server through it."""

    port: int
    admin_user: str

    def url_for(self, database_url: str) -> str:
        """`database_url` (a URL of the test server) through the pooler: same login and database."""
        parts = urlsplit(database_url)
        query = {k: v for k, v in parse_qs(parts.query).items() if k not in ("host", "port")}
        user = unquote(parts.username or "postgres")
        netloc = f"{user}@127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, doseq=True), ""))

    def admin_url(self) -> str:
        """The pooler's admin console (SHOW POOLS, SHOW SERVERS)."""
        return f"postgresql://{self.admin_user}@127.0.0.1:{self.port}/pgbouncer"


def _upstream(server_url: str) -> tuple[str, int, str]:
    """Host (or socket directory), port and login of the test server."""
    parts = urlsplit(server_url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    return host, port, unquote(parts.username or "postgres")


def _config(directory: Path, server_url: str, port: int, server_connections: int, logins: tuple[str, ...]) -> str:
    host, upstream_port, login = _upstream(server_url)
    users = "\n".join(f'"{name}" ""' for name in (login, *LOGINS, *logins))
    (directory / "users.txt").write_text(users + "\n")
    return f"""[databases]
* = host={host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
admin_users = {login}
pool_mode = transaction
default_pool_size = {server_connections}
max_db_connections = {server_connections}
max_client_conn = 1000
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
log_connections = 0
log_disconnections = 0
"""


def _run_as() -> list[str]:
    """PgBouncer refuses to run as root: `-u` a user that may read the config (and the embedded socket)."""
    if os.geteuid() != 0:
        return []
    for name in ("pgserver", "postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return ["-u", name]
    raise RuntimeError("running as root with no user for pgbouncer to switch to")


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited ({process.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port} within {deadline} s")


@contextlib.contextmanager
def running_pgbouncer(server_url: str, server_connections: int = SERVER_CONNECTIONS,
                      logins: tuple[str, ...] = ()) -> Iterator[PgBouncer]:
    """Start PgBouncer (transaction mode) in front of `server_url`'s server, at most `server_connections`
    server connections per database, for vjm's logins, the server URL's and `logins`; stop it at the end."""
    binary = pgbouncer_binary()
    if binary is None:
        raise FileNotFoundError("pgbouncer is not installed (.ci/run installs Debian's pgbouncer)")
    directory = Path(tempfile.mkdtemp(prefix="vjm-pgbouncer-"))
    directory.chmod(0o755)
    port = free_port()
    (directory / "pgbouncer.ini").write_text(_config(directory, server_url, port, server_connections, logins))
    for path in directory.iterdir():
        path.chmod(0o644)
    log = directory / "pgbouncer.log"
    log.touch(mode=0o666)
    log.chmod(0o666)
    process = subprocess.Popen([binary, *_run_as(), str(directory / "pgbouncer.ini")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # it logs to `log`
    try:
        _wait_for_port(port, process, log)
        yield PgBouncer(port=port, admin_user=_upstream(server_url)[2])
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
        if os.environ.get("VJM_KEEP_PGBOUNCER_LOG"):
            print(f"pgbouncer log kept in {log}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
