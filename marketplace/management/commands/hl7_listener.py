"""Run the HL7 v2 MLLP listener that takes orders from the centers' RIS (ORM^O01, OMI^O23).

    python manage.py hl7_listener [--host 0.0.0.0] [--port 2575] [--max-connections 32] [--workers 8]
                                  [--shared-port]

A RIS sends to the center's registered interface (``Hl7Interface``: MSH-3 sending application, MSH-4
sending facility, allowed hosts); every message is answered with an ACK and kept with it. Stops cleanly on
Ctrl-C or SIGTERM, finishing the messages being processed.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from marketplace.ris.listener import Hl7Listener
from marketplace.ris_models import Hl7Interface


class Command(BaseCommand):
    help = "Run the HL7 v2 MLLP listener for orders from the centers' RIS (ORM^O01, OMI^O23)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0", help="Address to listen on (default: all, 0.0.0.0).")  # noqa: S104
        parser.add_argument("--port", type=int, default=2575, help="TCP port (default: %(default)s).")
        parser.add_argument("--max-connections", type=int, default=32,
                            help="Most connections open at once; a further one is closed (default: %(default)s).")
        parser.add_argument("--workers", type=int, default=8,
                            help="Messages processed at once, each with its database connection "
                                 "(default: %(default)s).")
        parser.add_argument("--shared-port", action="store_true",
                            help="Share the port with other listener processes started with this option "
                                 "(SO_REUSEPORT): one per core takes more orders per second.")

    def handle(self, *args, **options):
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        if options["max_connections"] < 1 or options["workers"] < 1:
            raise CommandError("--max-connections and --workers must be at least 1")
        listener = Hl7Listener(host=options["host"], port=options["port"],
                               max_connections=options["max_connections"], workers=options["workers"],
                               shared_port=options["shared_port"])
        interfaces = list(Hl7Interface.objects.filter(active=True).select_related("center")
                          .order_by("sending_facility", "sending_application"))
        connections.close_all()  # this thread does no more database work; the workers have their own
        names = ", ".join(f"{i} → {i.center.slug}" for i in interfaces) or "none yet"
        self.stdout.write(f"HL7 listener on {options['host']}:{options['port']} "
                          f"({len(interfaces)} active interface(s): {names})")
        try:
            listener.serve_forever()
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        self.stdout.write("HL7 listener stopped")
