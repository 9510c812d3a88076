"""Who sees which quality statistics (issue 16): the scope a page may show, or NotFound.

- An imaging center's page: its people with a viewing role (``reporting.policy.CENTER_READ_ROLES``; not
  finance) and platform operations. Another center's people get 404, like any foreign object.
- A radiology group's page (its member readers): the group's admins and platform operations.
- A radiologist's own page: their own figures, never a reviewer's identity (the figures carry none).
- Outliers across the platform: operations only.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Organization, RadiologistProfile, Role
from accounts.policy import Actor
from core.errors import NotFound
from reporting import policy


@dataclass(frozen=True)
class StatsScope:
    """What one statistics page covers: a center's reads, a group's readers, one reader, or everyone."""

    title: str
    organization: Organization | None = None
    center: Organization | None = None
    group: Organization | None = None
    reader: RadiologistProfile | None = None

    @property
    def filters(self) -> dict:
        """The keyword arguments of ``reporting.quality.stats`` selectors."""
        return {"center": self.center, "group": self.group,
                "readers": [self.reader.pk] if self.reader is not None else None}


def organization_scope(*, actor: Actor, organization: Organization | None) -> StatsScope:
    """A center's or a group's statistics, for those allowed to see them (NotFound for anyone else)."""
    if organization is None or actor.user is None:
        raise NotFound()
    operations = policy.is_operations(actor)
    if organization.kind == Organization.Kind.IMAGING_CENTER and (
            operations or policy.center_reads_reports(actor, organization.pk)):
        return StatsScope(title=organization.name, organization=organization, center=organization)
    if organization.kind == Organization.Kind.RADIOLOGY_GROUP and (
            operations or actor.has_role(organization, Role.ADMIN)):
        return StatsScope(title=organization.name, organization=organization, group=organization)
    raise NotFound()


def own_scope(*, actor: Actor) -> StatsScope:
    """A radiologist's own figures; NotFound for anyone without a radiologist profile."""
    reader = RadiologistProfile.objects.filter(user=actor.user).select_related("user").first() \
        if actor.user is not None else None
    if reader is None:
        raise NotFound()
    return StatsScope(title=reader.name, reader=reader)


def platform_scope(*, actor: Actor) -> StatsScope:
    """Every reader, with the outliers: platform operations only."""
    if not policy.is_operations(actor):
        raise NotFound()
    return StatsScope(title="All readers")
