"""A private PostgreSQL server for the tests.

``running_postgres()`` initialises a cluster under a temporary directory, starts it on a
free loopback port, creates a password-protected role and database, yields the DSN, and
stops the server. As root (CI) the server runs as the ``postgres`` user, because
``initdb``/``postgres`` refuse to run as root. Not on CI and without the binaries, callers
skip; on CI (``CI=true``) a missing server is an error (``scripts/test`` installs it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.gateway_proc import free_port

USER, PASSWORD, DATABASE = "dragoman", "dragoman-test-pw", "dragoman"


def pg_bin() -> str | None:
    """The newest installed PostgreSQL ``bin`` directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                   key=lambda p: [int(x) for x in p.split("/")[-2].split(".") if x.isdigit()])
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


class PostgresMissing(RuntimeError):
    pass


@contextmanager
def running_postgres() -> Iterator[str]:
    bindir = pg_bin()
    if bindir is None:
        raise PostgresMissing("PostgreSQL is not installed (scripts/test installs it when run as "
                              "root; else apt-get install postgresql)")
    as_root = os.geteuid() == 0
    run_as: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = tempfile.mkdtemp(prefix="dragoman-pg-")
    data = os.path.join(base, "data")
    os.mkdir(data, 0o700)
    if as_root:
        pg = pwd.getpwnam("postgres")
        os.chmod(base, 0o755)
        for d in (base, data):
            os.chown(d, pg.pw_uid, pg.pw_gid)
    port = free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*run_as, *cmd], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, cwd=base)

    try:
        run(f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        # fsync off: the tests kill dragoman, never the database server.
        run(f"{bindir}/pg_ctl", "-D", data, "-l", f"{data}/server.log", "-w", "-t", "30",
            "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            "start")
        subprocess.run([*run_as, f"{bindir}/psql", "-q", "-h", base, "-p", str(port),
                        "-U", "postgres", "-d", "postgres",
                        "-c", f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'",
                        "-c", f"CREATE DATABASE {DATABASE} OWNER {USER}"],
                       check=True, stdout=subprocess.DEVNULL, cwd=base)
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if os.path.exists(f"{data}/postmaster.pid"):
            subprocess.run([*run_as, f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w",
                            "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd=base)
        shutil.rmtree(base, ignore_errors=True)
