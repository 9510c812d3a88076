"""The set-up the benchmark scripts share: a fresh PostgreSQL database, ReadRoom's environment, manage.py and
gunicorn as deployed. Each script keeps its own data, figures and table; only this scaffolding is common, so
that every bench builds its database and server the same way.

Imported as ``_harness``: a script run from the project root has bench/ first on its path.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("READROOM_BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def psql(statement: str, *, database: str = "postgres", capture: bool = True) -> None:
    """One statement through psql; ``capture=False`` lets its notices through to the console."""
    subprocess.run(["psql", f"{PG}/{database}", "-q", "-c", statement], check=True, capture_output=capture)


def drop_database(db: str, *, capture: bool = True) -> None:
    psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', capture=capture)


def fresh_database(db: str, *, capture: bool = True) -> None:
    """An empty database named ``db``, whatever a previous run left behind (not migrated)."""
    drop_database(db, capture=capture)
    psql(f'CREATE DATABASE "{db}"', capture=capture)


@contextlib.contextmanager
def migrated_database(db: str, *, keep: bool = False) -> Iterator[None]:
    """A fresh database ``db`` (the one DATABASE_URL names), migrated with Django set up in this process; dropped
    at the end unless ``keep``."""
    fresh_database(db)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0, interactive=False)
        connections.close_all()
        yield
        connections.close_all()
    finally:
        if not keep:
            drop_database(db)


def server_env(*, db: str, var_dir: str | Path, **extra: str) -> dict[str, str]:
    """This process's environment for a ReadRoom process as deployed (DEBUG off, no DJANGO_ALLOW_* escape
    hatches) on the database ``db``, with each script's own settings in ``extra`` (which win)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_ALLOW")}
    env.update({"DATABASE_URL": f"{PG}/{db}", "READROOM_VAR_DIR": str(var_dir), "DEBUG": "false",
                "DJANGO_SETTINGS_MODULE": "config.settings", "ALLOWED_HOSTS": "127.0.0.1,localhost", **extra})
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py args`` in its own process; its output, or the end of its errors as the exit message."""
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True, capture_output=True)
    if done.returncode:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def serve_gunicorn(env: dict[str, str], port: int, workers: int, log_path: Path | None = None, *,
                   quiet: bool = False) -> subprocess.Popen:
    """gunicorn as deployed (config/gunicorn.py: threaded workers, connections kept open) on 127.0.0.1:port, once
    it answers /healthz. Its output goes to ``log_path`` (kept open for the server's lifetime), else to this
    console, where ``quiet`` drops its stdout (the console e-mails) and keeps its errors."""
    if log_path is not None:
        output = {"stdout": open(log_path, "w"), "stderr": subprocess.STDOUT}  # noqa: SIM115 - the server's
    else:
        output = {"stdout": subprocess.DEVNULL} if quiet else {}
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi",
                            "-b", f"127.0.0.1:{port}", "-w", str(workers), "--log-level", "warning"],
                           cwd=ROOT, env=env, **output)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return web
        except OSError:
            if web.poll() is not None:
                see = f": see {log_path}" if log_path is not None else ""
                raise SystemExit(f"gunicorn exited before answering /healthz{see}") from None
            time.sleep(0.2)
    web.terminate()
    raise SystemExit("gunicorn did not answer /healthz")
