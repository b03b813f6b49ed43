"""A primary and a streaming standby that one test module owns (never the session server).

Both run the embedded server's binaries (the `pgserver` wheel ships initdb, pg_ctl and
pg_basebackup), so the harness needs no PostgreSQL installed. The primary is a fresh
`initdb` with `wal_level = replica`; the standby is `pg_basebackup -R` from it (a physical
replication slot, `hot_standby_feedback`), started on its own Unix socket and streaming.
Each server listens on a socket in its own directory only (no TCP port to collide on).

As root (CI), pgserver runs its servers as the system user `pgserver`; this harness does the
same: the directories are that user's and every tool runs as it (PostgreSQL refuses root).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

STANDBY_NAME = "vjm_standby"  # the standby's application_name, as synchronous_standby_names names it


def _pgserver_bin() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _system_user() -> str | None:
    """The user the servers run as: pgserver's `pgserver` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_folder_permissions, ensure_user_exists
    import stat

    ensure_user_exists("pgserver")
    binaries = _pgserver_bin()
    read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(binaries, read_exec)
    ensure_folder_permissions(binaries.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return "pgserver"


@dataclass
class Node:
    """One server of the pair: its data directory, its socket directory and its log."""

    name: str
    data_dir: Path
    socket_dir: Path

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port=5432"

    def conninfo(self) -> str:
        return f"host={self.socket_dir} port=5432 user=postgres"


@dataclass
class StandbyPair:
    """`primary` and `standby`; start(), then pause/resume replay, promote, stop."""

    base: Path
    primary: Node
    standby: Node
    system_user: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    promoted: bool = False

    @classmethod
    def make(cls, **settings: str) -> StandbyPair:
        """A pair in a new temporary directory (nothing started yet). `settings`: extra postgresql.conf lines."""
        user = _system_user()
        base = Path(tempfile.mkdtemp(prefix="vjm-standby-", dir="/tmp"))  # short: socket paths are limited
        base.chmod(0o755)
        nodes = {}
        for name in ("primary", "standby"):
            socket_dir = base / f"{name[0]}s"
            socket_dir.mkdir()
            nodes[name] = Node(name, base / name, socket_dir)
        pair = cls(base, nodes["primary"], nodes["standby"], user, dict(settings))
        pair._own(base)
        return pair

    # -- running the tools -------------------------------------------------------------------

    def _own(self, *paths: Path) -> None:
        if self.system_user is None:
            return
        for path in paths:
            shutil.chown(path, self.system_user, self.system_user)
            for child in path.rglob("*"):
                shutil.chown(child, self.system_user, self.system_user)

    def tool(self, name: str, *args: str, timeout: float = 120) -> str:
        """Run one of the embedded server's programs as the servers' user; its stdout."""
        result = subprocess.run([str(_pgserver_bin() / name), *args], capture_output=True, text=True,
                                timeout=timeout, user=self.system_user, cwd=self.base, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result.stdout

    def pg_ctl(self, node: Node, *args: str, timeout: float = 120) -> str:
        return self.tool("pg_ctl", "-D", str(node.data_dir), "-w", "-t", str(int(timeout)), *args, timeout=timeout)

    def _write_conf(self, node: Node, lines: dict[str, str]) -> None:
        text = "".join(f"{key} = '{value}'\n" for key, value in lines.items())
        with open(node.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# vjm standby harness\n" + text)

    def start_node(self, node: Node) -> None:
        self.pg_ctl(node, "-l", str(node.log), "start")

    def stop_node(self, node: Node, mode: str = "fast") -> None:
        if (node.data_dir / "postmaster.pid").exists():
            self.pg_ctl(node, "-m", mode, "stop")

    # -- the pair ----------------------------------------------------------------------------

    def start(self) -> StandbyPair:
        """initdb and start the primary, then base-back-up the standby from it and start it streaming."""
        self.tool("initdb", "-D", str(self.primary.data_dir), "--auth=trust", "--encoding=utf8", "-U", "postgres")
        self._write_conf(self.primary, {
            "listen_addresses": "", "unix_socket_directories": str(self.primary.socket_dir), "port": "5432",
            "wal_level": "replica", "max_wal_senders": "10", "max_replication_slots": "10",
            "hot_standby": "on", "hot_standby_feedback": "on", "max_connections": "200",
            "log_min_messages": "warning", **self.settings})
        self.start_node(self.primary)
        self.tool("pg_basebackup", "-D", str(self.standby.data_dir), "-R", "-X", "stream", "-C", "-S", STANDBY_NAME,
                  "-d", f"{self.primary.conninfo()} application_name={STANDBY_NAME}")
        # Promoted, the standby must not wait for a standby of its own (the primary's setting came with the copy).
        self._write_conf(self.standby, {"unix_socket_directories": str(self.standby.socket_dir),
                                        "synchronous_standby_names": ""})
        self.start_node(self.standby)
        return self

    def stop(self) -> None:
        """Stop both servers (immediately: nothing of theirs is kept) and remove their directories."""
        for node in (self.standby, self.primary):
            try:
                self.stop_node(node, "immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def promote(self) -> None:
        """`pg_ctl promote`: the standby ends recovery and becomes a primary (waits until it accepts writes)."""
        self.pg_ctl(self.standby, "promote")
        self.promoted = True

    async def wait_streaming(self, within: float = 60) -> None:
        """Until the primary's pg_stat_replication shows the standby streaming."""
        deadline = time.monotonic() + within
        conn = await asyncpg.connect(self.primary.url())
        try:
            while True:
                state = await conn.fetchval("SELECT state FROM pg_stat_replication WHERE application_name = $1",
                                            STANDBY_NAME)
                if state == "streaming":
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby is not streaming after {within} s (state {state!r})")
                await asyncio.sleep(0.02)  # poll: bounded by the deadline above
        finally:
            await conn.close()

    async def replayed_past(self, lsn: str, within: float = 60) -> None:
        """Until the standby has replayed the primary's WAL up to `lsn`."""
        deadline = time.monotonic() + within
        conn = await asyncpg.connect(self.standby.url())
        try:
            while not await conn.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby has not replayed {lsn} after {within} s")
                await asyncio.sleep(0.01)  # poll: bounded by the deadline above
        finally:
            await conn.close()

    async def caught_up(self, within: float = 60) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        conn = await asyncpg.connect(self.primary.url())
        try:
            lsn = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        finally:
            await conn.close()
        await self.replayed_past(lsn, within)

    async def standby_sql(self, statement: str, database: str = "postgres") -> object:
        conn = await asyncpg.connect(self.standby.url(database))
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    async def wal_receiver_pid(self) -> int:
        """The standby's WAL receiver process (what streams from the primary)."""
        pid = await self.standby_sql("SELECT pid FROM pg_stat_wal_receiver")
        if not isinstance(pid, int):
            raise RuntimeError("the standby has no WAL receiver")
        return pid

    async def pause_replay(self) -> None:
        """Stop the standby applying WAL (it still receives it); returns once replay is paused."""
        await self.standby_sql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 30
        while await self.standby_sql("SELECT pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise TimeoutError("replay did not pause")
            await asyncio.sleep(0.01)  # poll: bounded by the deadline above

    async def resume_replay(self) -> None:
        await self.standby_sql("SELECT pg_wal_replay_resume()")
