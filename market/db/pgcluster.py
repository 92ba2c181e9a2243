"""A throwaway PostgreSQL cluster on a loopback port, for tests and local trials.

Uses the Debian server binaries (``scripts/install-postgres.sh``): ``initdb`` into a temp
dir, ``pg_ctl`` to start it on 127.0.0.1 with trust auth, one fresh database per caller.
The server refuses to run as root, so under root it runs as the ``postgres`` user.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from market.errors import ConfigError


def find_pg_bin() -> Path | None:
    """The newest installed server's bin directory, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """One server process; :meth:`create_database` gives a URL to a new empty database."""

    def __init__(self, bin_dir: Path, root: Path, port: int, user: str | None) -> None:
        self.bin_dir, self.root, self.port, self.run_as = bin_dir, root, port, user

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise ConfigError("no PostgreSQL server found: run scripts/install-postgres.sh")
        run_as = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="market-pg-"))
        if run_as:
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        cluster = cls(bin_dir, root, _free_port(), run_as)
        data = root / "data"
        cluster._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {root} -c fsync=off"
        cluster._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"
        )
        return cluster

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            raise ConfigError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-500:]}")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


_SHARED: PostgresCluster | None = None


def shared_cluster() -> PostgresCluster:
    """One cluster per process, started on first use and stopped at exit."""
    global _SHARED
    if _SHARED is None:
        _SHARED = PostgresCluster.start()
        atexit.register(_SHARED.stop)
    return _SHARED
