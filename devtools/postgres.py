"""A throw-away PostgreSQL server from Debian's packages, on a free loopback port: the
tests' job store and `make cluster`'s (the schema is created by the first instance that
starts: JobStore.migrate).

PostgreSQL refuses to run as root, so under root it runs as the `postgres` user (runuser).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devtools.embedded_wms import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: install postgresql")
    return found[-1]


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Postgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/wps"

    def dump(self) -> bytes:
        """Every row of the `wps` database, as pg_dump writes it."""
        return subprocess.run([_bin("pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                               "postgres", "--data-only", "wps"], check=True,
                              capture_output=True).stdout

    def pid(self) -> int | None:
        """The postmaster's process id while it runs (from postmaster.pid)."""
        try:
            return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(self.directory / "data"),
                                  "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(options: str = "") -> Postgres:
    """Start a server on a free loopback port with database `wps`; `options` are more
    server options (e.g. "-c shared_preload_libraries=pg_stat_statements", for a bench)."""
    directory = Path(tempfile.mkdtemp(prefix="wps-pg-"))
    directory.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    port = free_port()
    data = directory / "data"
    subprocess.run(_as_owner([_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                              "postgres", "--no-sync"]), check=True, capture_output=True)
    server = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-o", f"{server} {options}",
                              "-w", "-l",
                              str(directory / "log"), "start"]), check=True,
                   capture_output=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                    "CREATE DATABASE wps"], check=True, capture_output=True)
    return Postgres(directory, port)
