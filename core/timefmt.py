"""Times as a person reads them: in their own zone, with the zone's abbreviation.

Every time written into a message, a notification or an email goes through ``local_time`` with the
reader's zone (``User.time_zone``; an organization's zone for someone without an account), so that
"until 10:37 CST" means the same to the reader as the table beside it. Templates do the same with
``{% timezone user.time_zone %}`` (base.html) and the ``T`` date format.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, tzinfo

from django.utils import timezone


def zone_of(zone: str | tzinfo | None) -> tzinfo:
    """A tzinfo for an IANA name (``America/Chicago``), a tzinfo, or None/unknown (UTC)."""
    if isinstance(zone, tzinfo):
        return zone
    try:
        return zoneinfo.ZoneInfo(zone) if zone else UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_abbreviation(moment: datetime) -> str:
    """``CST``, ``AEDT``; a zone without a letter abbreviation (``+04``) reads ``UTC+04``."""
    name = moment.tzname() or ""
    return f"UTC{name}" if name[:1] in "+-" else name


def local_time(moment: datetime, zone: str | tzinfo | None, *, date: bool = True) -> str:
    """``Dec 4, 10:37 CST`` in ``zone`` (the year is added when it is not the current one there);
    ``10:37 CST`` with ``date=False``."""
    local = timezone.localtime(moment, zone_of(zone))
    clock = f"{local:%H:%M} {zone_abbreviation(local)}"
    if not date:
        return clock
    day = f"{local:%b} {local.day}"
    if local.year != timezone.localtime(timezone.now(), local.tzinfo).year:
        day += f", {local.year}"
    return f"{day}, {clock}"
