"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, listening only on a
unix socket inside it (no TCP at all), stopped and deleted at the end; bounded in time.

Debian's binaries (``initdb``, ``pg_ctl`` on PATH, or under /usr/lib/postgresql/<n>/bin).
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user that
Debian's package creates, in a folder it owns.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

START_TIMEOUT_S: Final = 60
#: Durability is not under test here; without fsync initdb and each CREATE DATABASE are fast.
_SERVER_OPTIONS: Final = "-c listen_addresses='' -c fsync=off -c full_page_writes=off"


def find_initdb() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return versions[0] if versions else None


#: A role the server makes log in with a password (SCRAM), for tests of password handling.
PASSWORD_ROLE: Final = "smcp_password_user"


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Yield the DSN of a fresh server's ``postgres`` database, as the superuser ``postgres``
    (trust authentication on its private socket); the role :data:`PASSWORD_ROLE`, once a test
    creates it, must log in with its password. Raises RuntimeError naming what failed."""
    initdb = find_initdb()
    if initdb is None:
        raise RuntimeError("initdb not found: install Debian's postgresql package")
    pg_ctl = initdb.with_name("pg_ctl")
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "PostgreSQL will not run as root, and there is no postgres user to run it as: "
                "install Debian's postgresql package (it creates one)"
            ) from None
        as_user = [
            "setpriv",
            f"--reuid={owner.pw_uid}",
            f"--regid={owner.pw_gid}",
            "--clear-groups",
        ]
    root = Path(tempfile.mkdtemp(prefix="smcp-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if owner is not None:
        for path in (root, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    env = {**os.environ, "LC_ALL": "C"}

    def run(*argv: str) -> None:
        done = subprocess.run(
            [*as_user, *argv], env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    started = False
    try:
        run(
            str(initdb), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"
        )
        hba = data / "pg_hba.conf"
        # The first matching line wins: the password role first, everyone else trusted.
        hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text())
        options = f"{_SERVER_OPTIONS} -k {sockets}"
        run(
            str(pg_ctl),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
        started = True
        yield f"postgresql://postgres@/postgres?host={sockets}"
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run(str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(root, ignore_errors=True)


def throwaway_postgres_or_skip() -> Iterator[str]:
    """:func:`throwaway_postgres` for a fixture (``yield from``): the test is skipped, saying
    why, on a machine without PostgreSQL (CI installs it, so there it always runs)."""
    if find_initdb() is None:
        pytest.skip("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql)")
    with throwaway_postgres() as dsn:
        yield dsn


_database_numbers = itertools.count(1)


async def create_database(server_dsn: str, prefix: str) -> str:
    """A new empty database on the server of ``server_dsn`` (its name ``prefix`` and a number
    unique in this process); its DSN."""
    import asyncpg

    name = f"{prefix}_{os.getpid()}_{next(_database_numbers)}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    parts = urllib.parse.urlsplit(server_dsn)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
