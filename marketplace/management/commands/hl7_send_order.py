"""Send one order to an HL7 listener, as a center's RIS would, and print its ACK (for trying it out).

    python manage.py hl7_send_order --accession ACC-1001 --patient-id P-1001 [--placer PL-1001]
        [--control NW|CA|XO] [--priority S|A|R] [--procedure CTHEAD "CT head"] [--modality CT]
        [--history TEXT] [--application RIS] [--facility LAKESIDE_RIS] [--host 127.0.0.1] [--port 2575] [--omi]

The ORM^O01 (or, with ``--omi``, OMI^O23) is built with hl7apy and sent with python-hl7's MLLP client.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from marketplace.ris.hl7_send import Order, omi_o23, orm_o01, send


class Command(BaseCommand):
    help = "Send one HL7 v2 order (ORM^O01 or OMI^O23) to the HL7 listener and print its ACK."

    def add_arguments(self, parser):
        parser.add_argument("--accession", required=True, help="Accession number (OBR-18 / IPC-1).")
        parser.add_argument("--patient-id", required=True, help="PID-3.")
        parser.add_argument("--patient-name", default="Doe^Jane", help="PID-5, family^given (default: %(default)s).")
        parser.add_argument("--placer", help="Placer order number, ORC-2 (default: PL-<accession>).")
        parser.add_argument("--control", default="NW", choices=["NW", "CA", "XO"], help="ORC-1 (default: NW).")
        parser.add_argument("--priority", default="R", choices=["S", "A", "R"], help="S stat, A urgent, R routine.")
        parser.add_argument("--procedure", nargs=2, default=["CTHEAD", "CT head without contrast"],
                            metavar=("CODE", "TEXT"), help="OBR-4.")
        parser.add_argument("--modality", default="CT")
        parser.add_argument("--history", default="", help="Clinical history (OBR-13).")
        parser.add_argument("--application", default="RIS", help="MSH-3 (default: %(default)s).")
        parser.add_argument("--facility", default="LAKESIDE_RIS", help="MSH-4 (default: %(default)s).")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2575)
        parser.add_argument("--omi", action="store_true", help="Send an OMI^O23 instead of an ORM^O01.")

    def handle(self, *args, **options):
        family, _, given = options["patient_name"].partition("^")
        order = Order(control_id=f"RR{time.time_ns()}"[:20], placer=options["placer"] or f"PL-{options['accession']}",
                      accession=options["accession"], patient_id=options["patient_id"], patient_family=family,
                      patient_given=given, procedure_code=options["procedure"][0],
                      procedure_text=options["procedure"][1], modality=options["modality"],
                      priority=options["priority"], history=options["history"], control=options["control"],
                      application=options["application"], facility=options["facility"])
        message = omi_o23(order) if options["omi"] else orm_o01(order)
        try:
            ack = send(message, host=options["host"], port=options["port"])
        except OSError as exc:
            raise CommandError(f"cannot reach the listener at {options['host']}:{options['port']}: {exc}") from exc
        self.stdout.write(ack.replace("\r", "\n").strip())
        if "\rMSA|AA|" not in ack:
            raise CommandError("the order was not accepted (see the ACK's MSA and ERR above)")
