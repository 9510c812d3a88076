"""The production web server settings (config/gunicorn.py): a real gunicorn keeps client connections open."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings as django_settings

BASE_DIR = Path(django_settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_with_our_settings_answers_many_requests_on_one_connection(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_ENV", "S3_BUCKET"}}
    env.update({"READROOM_VAR_DIR": str(tmp_path), "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2",
                "GUNICORN_BIND": f"127.0.0.1:{port}", "CELERY_TASK_ALWAYS_EAGER": "true"})
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
                              cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):  # up when it answers (the first request loads Django)
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        first_socket = connection.sock
        for _ in range(3):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, body
            assert (response.getheader("Connection") or "").lower() != "close"
        assert connection.sock is first_socket  # the same TCP connection carried every request
        connection.close()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Using worker: gthread" in output, output
