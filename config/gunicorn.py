"""gunicorn's settings for ReadRoom: ``uv run gunicorn -c config/gunicorn.py config.wsgi``.

Threaded workers, because DICOMweb clients and the viewer keep their connections open between requests
(a viewer opening a study makes hundreds): a sync worker closes the connection after every response, so
each request would pay for a new TCP connection, and a slow client would hold a whole process.
"""

import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 30  # seconds an idle client connection is kept (the proxy in front may keep its own)
# A gthread worker reports to the arbiter from its main loop, so this is not a limit on request length:
# streaming a 2 GB study takes as long as the client takes.
timeout = 60
graceful_timeout = 60
# Recovering a stuck worker: a thread cannot be killed, so nothing that can hang runs in one. Pixel decodes
# run in decoder processes that are killed on overrun (studies.decoding, READROOM_DECODE_TIMEOUT); and each
# worker is replaced after a bounded number of requests (jittered so that they do not restart together),
# which also returns memory a leaky codec kept.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
# gunicorn's runtime control socket is not used; one fixed path per user would be shared by every
# gunicorn on the machine (tests, benchmarks).
control_socket_disable = True


def post_worker_init(worker):
    # Load the URL patterns, the views they import and the reverse-lookup tables now, not during the
    # worker's first request (which took half a second); then move all of Django's long-lived objects out
    # of the cyclic garbage collector's sight, so that its full collections stop walking them (30-40 ms
    # each, mid-request).
    from django.urls import reverse

    reverse("healthz")
    gc.freeze()
