"""Run the DICOM C-STORE gateway (C-ECHO and C-STORE for every storage SOP class).

    python manage.py dicom_gateway [--host 0.0.0.0] [--port 11112] [--shared-port]

Modalities call an organization's AE title (``DicomAeTitle``); only calling AE titles and hosts on
that AE title's allow-list (``DicomPeer``) are accepted. Stops cleanly on Ctrl-C or SIGTERM, letting
running associations finish. With ``--shared-port``, several gateway processes (one per core) listen on
the same port and the kernel spreads the associations among them.
"""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from studies.gateway import Gateway
from studies.models import DicomAeTitle


class Command(BaseCommand):
    help = "Run the DICOM C-STORE gateway (storage SCP with C-ECHO) for every organization's AE titles."

    gateway: Gateway | None = None

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0", help="Address to listen on (default: all, 0.0.0.0).")  # noqa: S104
        parser.add_argument("--port", type=int, default=settings.DICOM_GATEWAY_PORT,
                            help="TCP port (default: DICOM_GATEWAY_PORT, %(default)s).")
        parser.add_argument("--max-associations", type=int, default=16,
                            help="Most simultaneous associations (default: %(default)s).")
        parser.add_argument("--shared-port", action="store_true",
                            help="Share the port with other gateway processes started with this option "
                                 "(SO_REUSEPORT): one per core stores more instances per second.")

    def handle(self, *args, **options):
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        self.gateway = Gateway(host=options["host"], port=options["port"],
                               max_associations=options["max_associations"], shared_port=options["shared_port"])
        titles = list(DicomAeTitle.objects.filter(is_active=True).select_related("organization")
                      .order_by("ae_title"))
        connections.close_all()  # this thread does no more database work; each association has its own
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._stop)
        try:
            self.stdout.write(f"DICOM gateway listening on {options['host']}:{options['port']} "
                              f"({len(titles)} active AE title(s): "
                              f"{', '.join(f'{t.ae_title} → {t.organization.slug}' for t in titles) or 'none yet'})")
            self.gateway.serve_forever()
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        except KeyboardInterrupt:
            self.stdout.write("stopping the gateway")
            self._shutdown_in_background().join()
        self.stdout.write("DICOM gateway stopped")

    def _stop(self, signum, frame) -> None:
        self.stdout.write("SIGTERM: stopping the gateway")
        self._shutdown_in_background()

    def _shutdown_in_background(self) -> threading.Thread:
        # shutdown() waits for serve_forever() to return, so it must run in another thread.
        thread = threading.Thread(target=self.gateway.shutdown, name="dicom-gateway-shutdown")
        thread.start()
        return thread
