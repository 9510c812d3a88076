"""Reads of the study index, always scoped to the actor (studies.policy decides who sees what)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.policy import Actor
from core.errors import NotFound
from studies import policy
from studies.models import Instance, Series, Study, StudyAccessGrant


def study_list(*, actor: Actor) -> QuerySet[Study]:
    """Studies the actor may see at any level: own organizations' (by role) and actively granted ones."""
    own_orgs = policy.organizations_with_study_view(actor)
    condition = Q(organization_id__in=own_orgs)
    if actor.user is not None:
        condition |= Q(pk__in=_active_grants(actor).values("study_id"))
    return Study.objects.filter(condition, deleted_at__isnull=True)


def _active_grants(actor: Actor) -> QuerySet[StudyAccessGrant]:
    if actor.user is None:
        return StudyAccessGrant.objects.none()
    return StudyAccessGrant.objects.filter(user=actor.user, revoked_at__isnull=True, expires_at__gt=timezone.now())


def access_levels(*, actor: Actor, studies: list[Study]) -> dict[int, str]:
    """study id → ``full`` or ``preview`` for each given study the actor may see (one query at most)."""
    own = set(policy.organizations_with_study_view(actor))
    levels = {s.pk: policy.FULL for s in studies if s.organization_id in own}
    rest = [s.pk for s in studies if s.pk not in levels]
    if rest:
        for study_id, level in _active_grants(actor).filter(study_id__in=rest).values_list("study_id", "level"):
            if levels.get(study_id) != policy.FULL:
                levels[study_id] = level
    return levels


@dataclass(frozen=True)
class StudyAccess:
    """A study together with the level at which this actor sees it."""

    study: Study
    level: str

    @property
    def is_full(self) -> bool:
        return self.level == policy.FULL


def study_get(*, actor: Actor, study_uid: str, organization_id: int | None = None) -> StudyAccess:
    """The study with this UID that the actor may see (own organizations first), or 404.

    The same UID can exist at several organizations; ``organization_id`` picks one when given.
    """
    candidates = study_list(actor=actor).filter(study_instance_uid=study_uid)
    if organization_id is not None:
        candidates = candidates.filter(organization_id=organization_id)
    studies = list(candidates.select_related("organization")[:5])
    if not studies:
        raise NotFound("Study not found.")
    levels = access_levels(actor=actor, studies=studies)
    studies.sort(key=lambda s: (levels.get(s.pk) != policy.FULL, s.pk))
    best = studies[0]
    return StudyAccess(study=best, level=levels[best.pk])


def series_list(*, access: StudyAccess) -> QuerySet[Series]:
    return Series.objects.filter(study=access.study)


def series_get(*, access: StudyAccess, series_uid: str) -> Series:
    series = series_list(access=access).filter(series_instance_uid=series_uid).first()
    if series is None:
        raise NotFound("Series not found.")
    return series


def instance_list(*, access: StudyAccess) -> QuerySet[Instance]:
    return Instance.objects.filter(study=access.study)


def instance_get(*, access: StudyAccess, series_uid: str, sop_uid: str) -> Instance:
    instance = instance_list(access=access).filter(series__series_instance_uid=series_uid,
                                                   sop_instance_uid=sop_uid).select_related("series").first()
    if instance is None:
        raise NotFound("Instance not found.")
    return instance
