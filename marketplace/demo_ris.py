"""The demo world's RIS link (issue 23, item 5), registered after the marketplace's demo: Lakeside registers its
RIS as an HL7 interface (application RIS, facility LAKESIDE_RIS, the defaults of ``manage.py hl7_send_order``),
and three orders arrive "by HL7": ORM^O01 messages built with hl7apy go through the listener's own handler, as if
received over MLLP, so each is in the message log with its ACK:

- one for a CT that is already at Lakeside (accession LKSRIS0001): matched at once, its read request posted;
- one waiting for its images (LKSRIS0002);
- one cancelled by a second message (LKSRIS0003).

Idempotent: the interface is found by its names, the study by its accession number, and each message by its
control id (the handler answers a repeated MSH-10 with the stored ACK and does nothing twice).
"""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from accounts.models import Organization
from marketplace.demo import MarketplaceReport
from marketplace.demo_arrivals import demo_ct
from marketplace.ris_models import Hl7Interface, RisOrder

CENTER, APPLICATION, FACILITY = "lakeside", "RIS", "LAKESIDE_RIS"
MATCHED, WAITING, CANCELLED = "LKSRIS0001", "LKSRIS0002", "LKSRIS0003"
PATIENT = 3  # synthetic.demo_patient(3): Kowalski^Piotr, MRN100203


def load_demo_ris(organizations: dict[str, Organization], *, report: MarketplaceReport, profile: str,
                  today: date | None = None) -> None:
    """Lakeside's HL7 interface and its three orders (the marketplace's demo loader registered after its own)."""
    center = organizations.get(CENTER)
    if center is None:
        return
    interface, created = Hl7Interface.objects.get_or_create(
        sending_application=APPLICATION, sending_facility=FACILITY,
        defaults={"center": center, "allowed_hosts": [], "active": True})
    _count(report, "created" if created else "unchanged")
    from marketplace.ris.hl7_in import handle_message
    from marketplace.ris.hl7_send import Order, orm_o01

    def arrive(control_id: str, **fields) -> None:
        order = Order(control_id=control_id, application=APPLICATION, facility=FACILITY,
                      patient_id=f"MRN{100200 + PATIENT}", patient_family="Kowalski", patient_given="Piotr", **fields)
        ack = handle_message(orm_o01(order).encode("utf-8"), "127.0.0.1:0")
        if b"MSA|AA" not in ack:
            report.problems.append(f"demo HL7 order {control_id}: {ack.decode('utf-8', 'replace')[:200]}")

    if profile != "none":
        _, created = demo_ct(center, MATCHED, patient=PATIENT, description="CT ABDOMEN PELVIS WITH CONTRAST",
                             body_part="ABDOMEN", study_date=today or timezone.localdate(), profile=profile)
        _count(report, "created" if created else "unchanged")
        arrive("DEMO-ORM-0001", placer="LKS-ORD-0001", accession=MATCHED, procedure_code="CTABD",
               procedure_text="CT abdomen pelvis with contrast", priority="R",
               history="Right lower quadrant pain since yesterday, fever.")
    arrive("DEMO-ORM-0002", placer="LKS-ORD-0002", accession=WAITING, procedure_code="CTCHEST",
           procedure_text="CT chest without contrast", priority="R", history="Nodule follow-up, 12 months.")
    arrive("DEMO-ORM-0003", placer="LKS-ORD-0003", accession=CANCELLED, procedure_code="XRKNEE",
           procedure_text="XR knee 3 views", modality="CR", priority="R", history="Knee pain after a fall.")
    arrive("DEMO-ORM-0004", control="CA", placer="LKS-ORD-0003", accession=CANCELLED, procedure_code="XRKNEE",
           procedure_text="XR knee 3 views", modality="CR", priority="R", history="")
    states = dict(RisOrder.objects.filter(center=center, placer_order_number__startswith="LKS-ORD-")
                  .values_list("placer_order_number", "status"))
    report.notes.append(f"{center.name}: RIS orders by HL7 ({APPLICATION}@{FACILITY}): "
                        + ", ".join(f"{number} {status}" for number, status in sorted(states.items())))


def _count(report: MarketplaceReport, outcome: str) -> None:
    setattr(report, outcome, getattr(report, outcome) + 1)
