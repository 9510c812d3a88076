"""Reads for the study pages (list rows, the study page, its series and audit trail), scoped to the actor
through studies.selectors, which holds the study index's reads behind every door."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.policy import Actor
from core.errors import NotFound
from studies import policy, selectors
from studies.models import Study

RECEIVING_WINDOW_SECONDS = 120  # a study that got an instance this recently is shown as still receiving


def study_full_access_condition(*, actor: Actor) -> Q:
    """Rows the actor sees in full (own organizations by role, or a ``full`` grant): the only rows whose
    patient fields may be searched, sorted or shown."""
    condition = Q(organization_id__in=policy.organizations_with_study_view(actor))
    if actor.user is not None:
        condition |= Q(pk__in=selectors.active_grants(actor).filter(level=policy.FULL).values("study_id"))
    return condition


def study_jurisdictions(*, actor: Actor) -> list[str]:
    """The distinct jurisdictions ("US-TX") among the actor's studies, for the list filter (one query)."""
    pairs = (selectors.study_list(actor=actor).order_by().values_list("jurisdiction_country", "jurisdiction_region")
             .distinct())
    return sorted({f"{c}-{r}" if r else c for c, r in pairs})


def display_person_name(value: str) -> str:
    """DICOM PN "Rivera^Ana^^Dr" → "Rivera, Ana" (family name, then given and middle names)."""
    parts = [p.strip() for p in (value or "").split("=")[0].split("^")]
    given = " ".join(p for p in parts[1:3] if p)
    return ", ".join(p for p in (parts[0], given) if p)


@dataclass(frozen=True)
class StudyRow:
    """What a page may show of one study at the actor's level: a ``preview`` row carries no PHI at all
    (no patient, accession, description, dates or institution), so a template cannot leak it by mistake."""

    public_id: object
    level: str
    modalities: list[str]
    jurisdiction: str
    number_of_series: int
    number_of_instances: int
    total_size: int
    receiving: bool
    study_instance_uid: str = ""
    organization_name: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: object = None
    patient_sex: str = ""
    accession_number: str = ""
    study_description: str = ""
    study_date: object = None
    study_time: str = ""
    referring_physician_name: str = ""
    institution_name: str = ""
    received_at: object = None
    last_received_at: object = None
    deleted_at: object = None
    receiving_until: object = None  # while receiving: when the study counts as complete unless more images arrive

    @property
    def is_full(self) -> bool:
        return self.level == policy.FULL

    @property
    def patient_display_name(self) -> str:
        return display_person_name(self.patient_name)

    @property
    def referring_display_name(self) -> str:
        return display_person_name(self.referring_physician_name)

    @property
    def ingest_state(self) -> str:
        return "receiving" if self.receiving else "complete"


def study_row(study: Study, level: str, *, now=None) -> StudyRow:
    now = now or timezone.now()
    receiving_until = study.last_received_at + timedelta(seconds=RECEIVING_WINDOW_SECONDS)
    receiving = now < receiving_until
    # UIDs are kept at preview level (PS3.15 Retain UIDs Option): the preview's thumbnails are addressed by them.
    common = {"public_id": study.public_id, "level": level, "study_instance_uid": study.study_instance_uid,
              "modalities": study.modalities,
              "jurisdiction": study.jurisdiction, "number_of_series": study.number_of_series,
              "number_of_instances": study.number_of_instances, "total_size": study.total_size,
              "receiving": receiving, "receiving_until": receiving_until if receiving else None,
              "deleted_at": study.deleted_at}
    if level != policy.FULL:
        return StudyRow(**common)
    return StudyRow(**common, organization_name=study.organization.name, patient_name=study.patient_name,
                    patient_id=study.patient_id, patient_birth_date=study.patient_birth_date,
                    patient_sex=study.patient_sex, accession_number=study.accession_number,
                    study_description=study.study_description, study_date=study.study_date,
                    study_time=study.study_time, referring_physician_name=study.referring_physician_name,
                    institution_name=study.institution_name, received_at=study.received_at,
                    last_received_at=study.last_received_at)


def study_rows(*, actor: Actor, studies: list[Study]) -> list[StudyRow]:
    """One page of the list as rows at each study's level (at most one query for grants, one more when some
    study is seen blinded)."""
    accesses = selectors.study_accesses(actor=actor, studies=studies)
    blinded_ids = [pk for pk, access in accesses.items() if access.hide_reports]
    blinded = selectors.blinded_totals(study_ids=blinded_ids) if blinded_ids else {}
    now = timezone.now()
    rows = []
    for study in studies:
        if study.pk not in accesses:
            continue
        row = study_row(study, accesses[study.pk].level, now=now)
        if study.pk in blinded_ids:
            row = _blinded_row(row, blinded.get(study.pk, selectors.BlindedTotals()))
        rows.append(row)
    return rows


def study_page_row(*, access: selectors.StudyAccess) -> StudyRow:
    """The study's row for its page: its counters without the signed reports for a blinded reviewer."""
    row = study_row(access.study, access.level)
    if not access.hide_reports:
        return row
    totals = selectors.blinded_totals(study_ids=[access.study.pk])
    return _blinded_row(row, totals.get(access.study.pk, selectors.BlindedTotals()))


def _blinded_row(row: StudyRow, totals: selectors.BlindedTotals) -> StudyRow:
    return replace(row, number_of_series=totals.number_of_series, number_of_instances=totals.number_of_instances,
                   total_size=totals.total_size,
                   modalities=[m for m in row.modalities if m in totals.modalities])


def study_deleted_list(*, actor: Actor) -> QuerySet[Study]:
    """Soft-deleted studies of the organizations the actor manages (restorable within the retention window)."""
    managed = [org_id for org_id in actor.memberships if policy.can_manage_studies(actor, org_id)]
    return Study.objects.filter(organization_id__in=managed, deleted_at__isnull=False)


def study_get_for_page(*, actor: Actor, public_id) -> selectors.StudyAccess:
    """The study with this public id at the actor's level, or 404. A center admin also reaches the
    center's soft-deleted studies (to restore them); nobody else does."""
    study = (selectors.study_list(actor=actor).filter(public_id=public_id)
             .select_related("organization", "deleted_by").first())
    if study is None:
        study = (study_deleted_list(actor=actor).filter(public_id=public_id)
                 .select_related("organization", "deleted_by").first())
        if study is None:
            raise NotFound("Study not found.")
        return selectors.StudyAccess(study=study, level=policy.FULL)
    return selectors.study_accesses(actor=actor, studies=[study])[study.pk]


@dataclass(frozen=True)
class SeriesRow:
    """A series as a page shows it; ``preview_blocked`` when a preview must not show its pixels."""

    series_instance_uid: str
    series_number: int | None
    modality: str
    series_description: str
    body_part_examined: str
    number_of_instances: int
    total_size: int
    burned_in: bool
    annotation_undeclared: bool
    preview_blocked: bool
    undecodable: bool = False  # some image's pixel data cannot be decoded (Instance.undecodable_reason)


def series_rows(*, access: selectors.StudyAccess) -> list[SeriesRow]:
    """The study's series (two queries): description hidden at preview level (PS3.15 Annex E removes it),
    and no thumbnail at preview level for a series with burned-in annotation not marked "NO".

    ``burned_in`` only when an image declares Burned In Annotation YES; ``annotation_undeclared`` when some
    image declares neither YES nor NO (empty or unknown). Either blocks a preview: only "NO" is safe."""
    flags = (selectors.instance_list(access=access).filter(~Q(burned_in_annotation="NO") | ~Q(undecodable_reason=""))
             .order_by().values_list("series_id", "burned_in_annotation", "undecodable_reason").distinct())
    declared_yes, not_no, undecodable = set(), set(), set()
    for series_id, value, reason in flags:
        if reason:
            undecodable.add(series_id)
        if value != "NO":
            not_no.add(series_id)
        if value == "YES":
            declared_yes.add(series_id)
    rows = []
    for series in selectors.series_list(access=access):
        is_burned = series.pk in not_no
        rows.append(SeriesRow(
            series_instance_uid=series.series_instance_uid, series_number=series.series_number,
            modality=series.modality,
            series_description=series.series_description if access.is_full else "",
            body_part_examined=series.body_part_examined, number_of_instances=series.number_of_instances,
            total_size=series.total_size, burned_in=series.pk in declared_yes,
            annotation_undeclared=is_burned and series.pk not in declared_yes,
            preview_blocked=is_burned and not access.is_full, undecodable=series.pk in undecodable))
    return rows


def study_audit_trail(*, actor: Actor, study: Study, limit: int = 100):
    """The audit events about one study at its center, newest first: for the center's admins only."""
    from accounts.models import AuditEvent

    if not policy.can_manage_studies(actor, study.organization_id):
        raise NotFound()
    return list(AuditEvent.objects.filter(organization_id=study.organization_id, object_type="studies.study",
                                          object_id=study.study_instance_uid).order_by("-id")[:limit])


def study_public_ids(*, actor: Actor, organization, uids) -> dict[str, object]:
    """Study UID → public id for the given UIDs among the organization's studies the actor sees (one query)."""
    if not uids or organization is None:
        return {}
    return dict(selectors.study_list(actor=actor).filter(organization=organization, study_instance_uid__in=list(uids))
                .values_list("study_instance_uid", "public_id"))
