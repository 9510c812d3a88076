"""Studies that came without their order (issue 23): at a center with an active HL7 interface a study waits
``RIS_ORDER_WAIT_MINUTES`` for its order; past that it is listed on the orders page as "waiting for an order"
(``selectors.studies_waiting_for_order``), and the beat task tells the center's admins once. Nothing is posted
for it: a person decides (post it by hand, or fix the accession number in the RIS)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, Role
from marketplace.ris.selectors import studies_waiting_for_order
from marketplace.ris_models import Hl7Interface
from marketplace.services import events

BEAT = timedelta(minutes=5)  # the beat schedule's period: each study crosses the wait in exactly one window


def notify_unordered_studies(*, now: datetime | None = None) -> int:
    """Notify the admins of studies whose wait ended in the last beat period; returns how many studies."""
    now = now or timezone.now()
    told = 0
    center_ids = Hl7Interface.objects.filter(active=True).values_list("center_id", flat=True).distinct()
    for center in Organization.objects.filter(pk__in=list(center_ids)):
        crossed = list(studies_waiting_for_order(center, now=now)
                       .filter(received_at__gt=now - BEAT - _wait()))
        if not crossed:
            continue
        told += len(crossed)
        names = ", ".join(s.accession_number or s.study_description or s.study_instance_uid for s in crossed[:5])
        events.notify(events.center_people(center, Role.ADMIN),
                      title=f"{len(crossed)} stud{'y' if len(crossed) == 1 else 'ies'} waiting for an order",
                      body=f"No order from the RIS for: {names}. Post the read by hand or check the accession "
                           "number in the RIS.", url=reverse("ris_order_list"))
    return told


def _wait() -> timedelta:
    from marketplace.ris.selectors import wait_minutes

    return timedelta(minutes=wait_minutes())
