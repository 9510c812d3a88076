"""Reads of the study index, always scoped to the actor (studies.policy decides who sees what)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from accounts.policy import Actor
from core.errors import NotFound
from core.sql import Converters, column_converters, converted, one_round_trip_available, require_sql
from studies import policy
from studies.models import Instance, Series, Study, StudyAccessGrant


def study_list(*, actor: Actor) -> QuerySet[Study]:
    """Studies the actor may see at any level: own organizations' (by role) and actively granted ones."""
    own_orgs = policy.organizations_with_study_view(actor)
    condition = Q(organization_id__in=own_orgs)
    if actor.user is not None:
        condition |= Q(pk__in=active_grants(actor).values("study_id"))
    return Study.objects.filter(condition, deleted_at__isnull=True)


def active_grants(actor: Actor) -> QuerySet[StudyAccessGrant]:
    if actor.user is None:
        return StudyAccessGrant.objects.none()
    return StudyAccessGrant.objects.filter(user=actor.user, revoked_at__isnull=True, expires_at__gt=timezone.now())


def access_levels(*, actor: Actor, studies: list[Study]) -> dict[int, str]:
    """study id → ``full`` or ``preview`` for each given study the actor may see (one query at most)."""
    return {pk: access.level for pk, access in study_accesses(actor=actor, studies=studies).items()}


def study_accesses(*, actor: Actor, studies: list[Study]) -> dict[int, StudyAccess]:
    """study id → the actor's access (level, and blinding) for each given study the actor may see (one query
    at most). Blinded: seen only through grants, one of them an active ``hide_reports`` grant."""
    own = set(policy.organizations_with_study_view(actor))
    by_pk = {s.pk: s for s in studies}
    levels = {s.pk: policy.FULL for s in studies if s.organization_id in own}
    rest = [s.pk for s in studies if s.pk not in levels]
    blinded = set()
    if rest:
        for study_id, level, hide in (active_grants(actor).filter(study_id__in=rest)
                                      .values_list("study_id", "level", "hide_reports")):
            if levels.get(study_id) != policy.FULL:
                levels[study_id] = level
            if hide:
                blinded.add(study_id)
    return {pk: StudyAccess(study=by_pk[pk], level=level, hide_reports=pk in blinded) for pk, level in levels.items()}


def blinded_study_ids(*, actor: Actor) -> QuerySet:
    """A subquery of the ids of the studies the actor sees blinded (see StudyAccess.hide_reports): to exclude
    their signed reports from searches across studies without a query of its own."""
    own = policy.organizations_with_study_view(actor)
    return (active_grants(actor).filter(hide_reports=True).exclude(study__organization_id__in=own)
            .values("study_id"))


@dataclass(frozen=True)
class StudyAccess:
    """A study together with the level at which this actor sees it.

    ``hide_reports``: a blinded peer reviewer (issue 16). The actor sees the study only through grants and
    holds an active ``hide_reports`` one among them: the study's signed reports (SRs ingested by reporting,
    ``Instance.received_via == "report"``, which name their reader) and any series made only of them are
    hidden from every series and instance read below, as if they did not exist. Members of the center are
    never blinded (their access does not come through a grant, and they may read the reports anyway)."""

    study: Study
    level: str
    hide_reports: bool = False

    @property
    def is_full(self) -> bool:
        return self.level == policy.FULL


def study_get(*, actor: Actor, study_uid: str, organization_id: int | None = None) -> StudyAccess:
    """The study with this UID that the actor may see (own organizations first), or 404.

    The same UID can exist at several organizations; ``organization_id`` picks one when given. Of several
    the actor may see, the one seen in full comes first, then the oldest.
    """
    key = _remembered_key(actor, study_uid) if organization_id is None else None
    own = policy.organizations_with_study_view(actor)
    sql, params = _best_study(actor, own, study_uid, organization_id, _columns(Study, "s"))
    found = _models_from_sql(Study, sql, params)
    if not found:
        if key is not None:
            _REMEMBERED.pop(key, None)
        raise NotFound("Study not found.")
    study, (rank, hidden) = found[0]
    access = StudyAccess(study=study, level=_RANK_LEVEL[rank], hide_reports=bool(hidden))
    if key is not None:
        if len(_REMEMBERED) >= _REMEMBER_AT_MOST:
            _REMEMBERED.clear()
        # The blinding is remembered with the level, and checked with it (study_access_verify).
        _REMEMBERED[key] = (study.pk, study.organization_id, study.study_instance_uid, rank, bool(hidden))
    return access


_LEVEL_RANK = {policy.PREVIEW: 1, policy.FULL: 2}
_RANK_LEVEL = {rank: level for level, rank in _LEVEL_RANK.items()}


def _best_study(actor: Actor, own: list[int], study_uid: str, organization_id: int | None,
                selected: str) -> tuple[str, list]:
    """SQL and parameters selecting ``selected``, the level's rank (``level_rank``) and the blinding
    (``hide_reports``, 1 or 0: StudyAccess.hide_reports) of the study study_get answers:
    ``study_list(actor).filter(study_instance_uid=...)`` and each study's level (access_levels) in one
    hand-written query. Every study-scoped DICOMweb request starts here (a viewer makes hundreds per study),
    and building and compiling the ORM query cost five times the query itself. The rule is study_list's:
    own organizations (by role) or an active grant; tests/studies/test_selectors.py holds them equal."""
    grants = actor.user is not None  # an organization's key holds no grants
    grant_params = [actor.user.pk, connection.ops.adapt_datetimefield_value(timezone.now())] if grants else []
    # own organizations and the grant conditions twice: once for the level, once for the blinding
    params = [*own, *grant_params, *own, *grant_params,
              study_uid, *([organization_id] if organization_id is not None else [])]
    return _best_study_sql(selected, len(own), organization_id is not None, grants), params


@functools.cache
def _best_study_sql(selected: str, own_count: int, one_organization: bool, grants: bool) -> str:
    """``_best_study``'s SQL for one shape. Without grants to consider there is no grant subquery at all: its
    mere presence (with a NULL user) would keep PostgreSQL planning the prepared statement at every call."""
    own = f"s.organization_id IN ({', '.join(['%s'] * own_count)})" if own_count else "1 = 0"
    rank = " ".join(f"WHEN '{level}' THEN {n}" for level, n in _LEVEL_RANK.items())
    # Only column and table names and constants are formatted in; every value is a parameter.
    active = (f"FROM {StudyAccessGrant._meta.db_table} g WHERE g.study_id = s.id AND g.user_id = %s "  # noqa: S608
              "AND g.revoked_at IS NULL AND g.expires_at > %s")
    grant_rank = f"(SELECT MAX(CASE g.level {rank} END) {active})" if grants else "NULL"  # noqa: S608
    # Blinded (StudyAccess.hide_reports): seen through grants only, one of them hiding the reports.
    grant_hidden = f"(SELECT MAX(CASE WHEN g.hide_reports THEN 1 ELSE 0 END) {active})" if grants else "0"  # noqa: S608
    return (f"SELECT * FROM (SELECT {selected}, CASE WHEN {own} THEN {_LEVEL_RANK[policy.FULL]} "  # noqa: S608
            f"ELSE {grant_rank} END AS level_rank, CASE WHEN {own} THEN 0 ELSE {grant_hidden} END AS hide_reports "
            f"FROM {Study._meta.db_table} s WHERE s.study_instance_uid = %s AND s.deleted_at IS NULL"
            + (" AND s.organization_id = %s" if one_organization else "")
            + ") s WHERE s.level_rank IS NOT NULL ORDER BY s.level_rank DESC, s.id LIMIT 1")


# --- remembered study access: one exchange per study-scoped search -----------------------------------
# A viewer asks for the same study's series and instances over and over. study_get remembers, per process,
# what it answered each principal for each UID; a search may start from that answer instead of looking
# the study up, provided it sends study_access_verify first in the same round trip (core.sql.one_round_trip)
# as its rows and audit record. The database then checks, with study_get's own query and at that moment,
# that the answer still holds: a revoked or expired grant, a lost role, a deleted study or a better
# study under the same UID fails the check, which fails the whole round trip before anything is read or
# recorded, and the search looks the study up again. So nothing is served on a stale decision; only the
# lookup's separate exchange is saved.

# key → study id, organization id, UID, level rank, blinded (StudyAccess.hide_reports)
_REMEMBERED: dict[tuple, tuple[int, int, str, int, bool]] = {}
_REMEMBER_AT_MOST = 10_000  # about 2 MB; when full, it starts again


def _remembered_key(actor: Actor, study_uid: str) -> tuple | None:
    if actor.user is not None:
        return ("user", actor.user.pk, study_uid)
    if actor.api_key is not None:
        return ("key", actor.api_key.pk, study_uid)
    return None


def study_get_remembered(*, actor: Actor, study_uid: str) -> StudyAccess | None:
    """What study_get last answered this principal for this UID in this process, unverified, or None.

    Only for a round trip that sends ``study_access_verify`` first, and that looks the study up again when
    the check fails; None where no such round trip can be made (SQLite, or inside a transaction, where a
    failed check would spoil the transaction). The study carries only its id, organization and UID: any
    other field is read afresh from the database if asked for."""
    if not one_round_trip_available():
        return None
    remembered = _REMEMBERED.get(_remembered_key(actor, study_uid))
    if remembered is None:
        return None
    pk, organization_id, uid, rank, hidden = remembered
    study = Study.from_db(connection.alias, ["id", "organization_id", "study_instance_uid"], [pk, organization_id, uid])
    return StudyAccess(study=study, level=_RANK_LEVEL[rank], hide_reports=hidden)


def study_access_verify(*, actor: Actor, access: StudyAccess) -> None:
    """Send the check that study_get would still answer ``access`` for its study's UID: inside
    ``core.sql.one_round_trip``, before the statements it guards. When it would not, the round trip ends in
    ``core.sql.RequirementFailed`` and none of its statements has taken effect (the study_get that follows
    replaces the remembered answer)."""
    study = access.study
    own = policy.organizations_with_study_view(actor)
    best, params = _best_study(actor, own, study.study_instance_uid, None, "s.id")
    with connection.cursor() as cursor:
        cursor.execute(_verify_sql(best), [study.pk, _LEVEL_RANK[access.level], int(access.hide_reports), *params,
                                           "The study access changed."])


@functools.cache
def _verify_sql(best: str) -> str:
    # The blinding is part of the answer checked: a hide_reports grant given since ends the remembered access.
    return require_sql(f"(SELECT b.id = %s AND b.level_rank = %s AND b.hide_reports = %s "  # noqa: S608 - SQL only
                       f"FROM ({best}) b)")


# --- blinded peer review: the signed reports are not there ----------------------------------------
REPORT_SOURCE = "report"  # studies.ingest.Source.REPORT (not imported: ingest loads pydicom at start-up)
# A signed report is stored into its study as an SR (reporting.services.delivery, REPORT_SOURCE) that names
# its reader. For a blinded reviewer (StudyAccess.hide_reports) every read of series and instances below
# leaves those SRs out, and the series that hold nothing else, so that a request for one is a 404 like
# for a missing one.

def without_signed_reports(queryset: QuerySet) -> QuerySet:
    """Instances (or series) as a blinded reviewer sees them: no signed report, no series of reports only."""
    if queryset.model is Instance:
        return queryset.exclude(received_via=REPORT_SOURCE)
    return queryset.filter(Exists(Instance.objects.filter(series_id=OuterRef("pk"))
                                  .exclude(received_via=REPORT_SOURCE)))


def series_list(*, access: StudyAccess) -> QuerySet[Series]:
    series = Series.objects.filter(study=access.study)
    return without_signed_reports(series) if access.hide_reports else series


def series_get(*, access: StudyAccess, series_uid: str) -> Series:
    sql = (f"SELECT {_columns(Series, 'se')} FROM {Series._meta.db_table} se "  # noqa: S608 - names only
           "WHERE se.study_id = %s AND se.series_instance_uid = %s")
    params = [access.study.pk, series_uid]
    if access.hide_reports:
        sql += (f" AND EXISTS (SELECT 1 FROM {Instance._meta.db_table} i "  # noqa: S608 - names only
                "WHERE i.series_id = se.id AND i.received_via <> %s)")
        params.append(REPORT_SOURCE)
    found = _models_from_sql(Series, sql + " LIMIT 1", params)
    if not found:
        raise NotFound("Series not found.")
    return found[0][0]


def instance_list(*, access: StudyAccess) -> QuerySet[Instance]:
    instances = Instance.objects.filter(study=access.study)
    return without_signed_reports(instances) if access.hide_reports else instances


def signed_reports_hidden_from(*, actor: Actor, queryset: QuerySet) -> QuerySet:
    """Series or instances of any studies, less what the actor's blinded studies hide (one subquery, no query
    of its own): for searches across studies."""
    if actor.user is None:
        return queryset  # an organization's key holds no grants, so nothing is blinded for it
    blinded = Q(study_id__in=blinded_study_ids(actor=actor))
    if queryset.model is Instance:
        return queryset.exclude(blinded & Q(received_via=REPORT_SOURCE))
    shown = Exists(Instance.objects.filter(series_id=OuterRef("pk")).exclude(received_via=REPORT_SOURCE))
    return queryset.exclude(blinded & ~shown)


@dataclass(frozen=True)
class BlindedTotals:
    """A study's counters as a blinded reviewer sees them: the stored ones (Study, Series) count the reports."""

    number_of_series: int = 0
    number_of_instances: int = 0
    total_size: int = 0
    modalities: frozenset[str] = frozenset()
    series_instances: dict[str, int] = field(default_factory=dict)  # series UID → its instances shown

    def modalities_in_study(self, stored: str) -> str:
        """The stored ``\\CT\\SR\\`` less the modalities of hidden series only (order kept)."""
        kept = [m for m in (stored or "").split("\\") if m and m in self.modalities]
        return "\\" + "\\".join(kept) + "\\" if kept else ""


def blinded_totals(*, study_ids) -> dict[int, BlindedTotals]:
    """study id → its counters without the signed reports, for the given (blinded) studies (one query)."""
    rows = (Instance.objects.filter(study_id__in=list(study_ids)).exclude(received_via=REPORT_SOURCE).order_by()
            .values_list("study_id", "series__series_instance_uid", "series__modality")
            .annotate(count=Count("id"), size=Sum("size")))
    per_study: dict[int, list] = {}
    for study_id, series_uid, modality, count, size in rows:
        per_study.setdefault(study_id, []).append((series_uid, modality, count, size))
    return {study_id: BlindedTotals(
        number_of_series=len(series), number_of_instances=sum(s[2] for s in series),
        total_size=sum(s[3] or 0 for s in series), modalities=frozenset(s[1] for s in series if s[1]),
        series_instances={s[0]: s[2] for s in series}) for study_id, series in per_study.items()}


def instance_get(*, access: StudyAccess, series_uid: str, sop_uid: str) -> Instance:
    return instance_get_sent(access=access, series_uid=series_uid, sop_uid=sop_uid)()


def instance_get_sent(*, access: StudyAccess, series_uid: str, sop_uid: str) -> Callable[[], Instance]:
    """instance_get's query, sent now (it may share a round trip, core.sql.one_round_trip); the function
    returned reads its answer: the instance, or NotFound."""
    # One row at most: SOP Instance UIDs are unique within an organization, and a study has one.
    sql = (f"SELECT {_columns(Instance, 'i')} FROM {Instance._meta.db_table} i "  # noqa: S608 - names only
           f"JOIN {Series._meta.db_table} se ON se.id = i.series_id "
           "WHERE i.study_id = %s AND i.sop_instance_uid = %s AND se.series_instance_uid = %s")
    params = [access.study.pk, sop_uid, series_uid]
    if access.hide_reports:  # a signed report is "not found" for a blinded reviewer
        sql += " AND i.received_via <> %s"
        params.append(REPORT_SOURCE)
    read = _models_from_sql_sent(Instance, sql + " LIMIT 1", params)

    def instance() -> Instance:
        found = read()
        if not found:
            raise NotFound("Instance not found.")
        return found[0][0]
    return instance


# --- hand-written lookups: the DICOMweb hot path ---------------------------------------------------
# study_get, series_get and instance_get open nearly every DICOMweb request. Their queries are fixed, so
# they are written once as SQL (and prepared by PostgreSQL after a few uses) instead of being built and
# compiled by the ORM each time, which cost several times the query. Rows become model instances as the
# ORM would make them (same columns, same value converters).

@functools.cache
def _columns(model, alias: str) -> str:
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


def _models_from_sql(model, sql: str, params: list) -> list[tuple]:
    """(model instance, extra values) per row of ``sql``, which selects ``_columns(model)`` first."""
    return _models_from_sql_sent(model, sql, params)()


def _models_from_sql_sent(model, sql: str, params: list) -> Callable[[], list[tuple]]:
    """The same, with the query sent now and its rows read by the function returned."""
    cursor = connection.cursor()
    cursor.execute(sql, params)

    def read() -> list[tuple]:
        with cursor:
            rows = cursor.fetchall()
        fields = model._meta.concrete_fields
        names, converters = [field.attname for field in fields], _converters(model, connection.vendor)
        return [(model.from_db(connection.alias, names, converted(row[:len(fields)], converters)),
                 tuple(row[len(fields):])) for row in rows]
    return read


@functools.cache
def _converters(model, vendor: str) -> Converters:
    """The ORM's converters for the model's columns, per backend (``vendor`` keys the cache)."""
    return column_converters(field.get_col(model._meta.db_table) for field in model._meta.concrete_fields)
