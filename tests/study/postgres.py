"""A real PostgreSQL server for the lab tests: ``initdb`` and ``pg_ctl`` in a temporary folder, on 127.0.0.1.

The server is Debian's (``scripts/setup`` installs the ``postgresql`` package). A test that needs
it is skipped where the server programs or the driver are missing, except under CI (the
variable ``CI`` set), where a missing server is a failure: set-up installs it there.

As root the server runs as the ``postgres`` user (``initdb`` refuses root), in a folder of its
own under the system's temporary folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests import helpers

SUPERUSER = "postgres"


def server_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on the PATH, or Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent  # Debian links initdb/pg_ctl into /usr/local/bin, pg_dump not
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                     if Path(p).parent.name.isdigit() else 0)
    for folder in reversed(folders):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def unavailable() -> str | None:
    """Why no server can be started here (None: it can)."""
    if server_bin() is None:
        return "PostgreSQL's initdb/pg_ctl are not installed (scripts/setup installs the postgresql package)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the PostgreSQL driver is not installed (pip install -e '.[lab]')"
    return None


def require_server() -> None:
    """Skip the test where no server can be started, but fail under CI, whose set-up installs one."""
    reason = unavailable()
    if reason is not None:
        helpers.unavailable(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: its superuser connects over TCP with ``password``."""

    bin: Path
    folder: Path
    port: int
    password: str
    as_postgres_user: bool

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _run(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = list(argv)
        if self.as_postgres_user:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)

    def url(self, user: str = SUPERUSER, database: str = "postgres", password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql+psycopg://{auth}@127.0.0.1:{self.port}/{database}"

    def sql(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password,
                             dbname=database, autocommit=True) as con:
            for statement in statements:
                con.execute(statement)  # type: ignore[arg-type]

    def create_lab(self, role: str, password: str, database: str) -> None:
        """The role and the database of a lab, as studies/README.md tells an administrator to make them."""
        self.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'", f"CREATE DATABASE {database} OWNER {role}")

    def dump(self, database: str) -> str:
        """``pg_dump`` of ``database`` (everything in it, as SQL)."""
        env = dict(os.environ, PGPASSWORD=self.password)
        cmd = [str(self.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, database]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60, env=env).stdout

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PostgresServer:
    """initdb a cluster in a fresh temporary folder and start it on a free port of 127.0.0.1."""
    bin_dir = server_bin()
    assert bin_dir is not None
    as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="mosapp-pg-"))
    password = "superuser-" + os.urandom(8).hex()
    (folder / "pw").write_text(password + "\n", encoding="utf-8")
    if as_postgres:
        shutil.chown(folder, SUPERUSER, SUPERUSER)
        shutil.chown(folder / "pw", SUPERUSER, SUPERUSER)
    server = PostgresServer(bin=bin_dir, folder=folder, port=_free_port(), password=password,
                            as_postgres_user=as_postgres)
    try:
        server._run(str(bin_dir / "initdb"), "-D", str(server.data), "-U", SUPERUSER, "--pwfile", str(folder / "pw"),
                    "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {server.port} -k {folder} -c fsync=off -c max_connections=60"
        for _attempt in range(3):
            started = server._run(str(bin_dir / "pg_ctl"), "-D", str(server.data), "-o", options,
                                  "-l", str(folder / "log"), "-w", "-t", "60", "start", check=False)
            if started.returncode == 0:
                break
            time.sleep(0.5)  # the port was taken meanwhile: another one
            server.port = _free_port()
            options = f"-h 127.0.0.1 -p {server.port} -k {folder} -c fsync=off -c max_connections=60"
        else:
            log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log}")
    except BaseException:
        server.stop()
        raise
    return server


__all__ = ["PostgresServer", "require_server", "server_bin", "start_server", "unavailable"]
