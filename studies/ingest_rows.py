"""The index rows ingest writes (studies.ingest): the study and series rows of arriving instances, found or
created in few statements, each instance's row, and the counters added in one global lock order.

``Flush`` is what one transaction of a batch learned; ``RowCache`` keeps known rows across a batch's
transactions. Several statements are hand-written SQL where the ORM's per-value work cost more CPU than the
rest of indexing (``core.sql.insert_rows`` says why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from accounts.models import Organization
from core.sql import insert_rows, quoted, sent_together
from studies.dicom import ParsedInstance
from studies.models import Instance, Series, Study

if TYPE_CHECKING:
    from studies.ingest import _Pending as Pending


def storage_key(organization: Organization, study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Built by the server from validated UIDs only: never from file names or DICOMDIR paths."""
    return f"{organization.public_id}/{study_uid}/{series_uid}/{sop_uid}.dcm"


def study_defaults(organization: Organization, parsed: ParsedInstance, jurisdiction) -> dict:
    country, region = jurisdiction or (organization.country, organization.region)
    f = parsed.field
    return {
        "patient_id": f("PatientID"),
        "patient_name": f("PatientName"),
        "patient_birth_date": f("PatientBirthDate"),
        "patient_sex": f("PatientSex"),
        "accession_number": f("AccessionNumber"),
        "study_description": f("StudyDescription"),
        "study_date": f("StudyDate"),
        "study_time": f("StudyTime"),
        "study_id": f("StudyID"),
        "referring_physician_name": f("ReferringPhysicianName"),
        "institution_name": f("InstitutionName"),
        "jurisdiction_country": country,
        "jurisdiction_region": region,
    }


class RowCache:
    """Study and series rows known to exist, kept across the transactions of one batch or gateway.

    A flush starts from a copy and hands its rows back only once its transaction committed, so a
    rolled-back row is never reused. Counters are never written from these objects (``F()`` updates by
    primary key), so stale counter values do not matter. A row deleted meanwhile (a purged study) makes
    the next insert fail: that instance is answered "retry later" and the cache is emptied.
    """

    MAX_ROWS = 2000

    def __init__(self) -> None:
        self.studies: dict[tuple[int, str], Study] = {}
        self.series: dict[tuple[int, str], Series] = {}

    def keep(self, flush: Flush) -> None:
        if len(self.studies) + len(self.series) > self.MAX_ROWS:
            self.clear()
        self.studies.update(flush.studies)
        self.series.update(flush.series)

    def clear(self) -> None:
        self.studies.clear()
        self.series.clear()


class Flush:
    """What one transaction of a batch learned: rows to reuse, counters to add, files written."""

    def __init__(self, rows: RowCache | None = None) -> None:
        self.studies: dict[tuple[int, str], Study] = dict(rows.studies) if rows else {}
        self.series: dict[tuple[int, str], Series] = dict(rows.series) if rows else {}
        self.series_counts: dict[int, list[int]] = {}  # series pk -> [instances, bytes]
        self.study_counts: dict[int, list[int]] = {}  # study pk -> [instances, bytes, new series]
        self.new_modalities: dict[int, list[str]] = {}
        self.created_series: set[int] = set()  # by this transaction, not counted in its study yet
        self.written: list[str] = []


def rows_for(item: Pending, flush: Flush) -> tuple[Study, Series, bool, str]:
    """The study and series rows of an instance (created when new; reused within one transaction).

    Rows already known to this transaction (or to the batch's ``RowCache``) cost nothing; else one query
    looks both up; only a new study or series goes through ``get_or_create``."""
    organization, parsed = item.organization, item.parsed
    modality = parsed.field("Modality")
    study = flush.studies.get((organization.pk, parsed.study_uid))
    series = flush.series.get((study.pk, parsed.series_uid)) if study is not None else None
    if series is not None:
        # the first instance of a series this flush created counts it (``remember``)
        created = series.pk in flush.created_series
        flush.created_series.discard(series.pk)
        return study, series, created, modality
    found_study, found_series = lookup_rows(organization.pk, parsed.study_uid, parsed.series_uid)
    study = study or found_study
    if study is None:
        study, _ = Study.objects.get_or_create(
            organization=organization, study_instance_uid=parsed.study_uid,
            defaults=study_defaults(organization, parsed, item.jurisdiction))
    series_created = False
    series = found_series if found_series is not None and found_series.study_id == study.pk else None
    if series is None:
        series, series_created = Series.objects.get_or_create(
            study=study, series_instance_uid=parsed.series_uid, defaults=series_defaults(parsed))
    return study, series, series_created, modality


def series_defaults(parsed: ParsedInstance) -> dict:
    f = parsed.field
    return {"modality": f("Modality"), "series_number": f("SeriesNumber"),
            "series_description": f("SeriesDescription"), "body_part_examined": f("BodyPartExamined"),
            "series_date": f("SeriesDate")}


def lookup_rows(organization_pk: int, study_uid: str, series_uid: str) -> tuple[Study | None, Series | None]:
    """The study (and its series) by UID in one query, as model instances whose other fields load lazily."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT st.id, se.id " + rows_from_clause(), [series_uid, organization_pk, study_uid])
        row = cursor.fetchone()
    return rows_from(organization_pk, study_uid, series_uid, row)


def rows_from_clause() -> str:
    """A study by UID and its series by UID (parameters: series UID, organization, study UID)."""
    return (f"FROM {quoted(Study._meta.db_table)} st LEFT OUTER JOIN {quoted(Series._meta.db_table)} se "
            "ON se.study_id = st.id AND se.series_instance_uid = %s "
            "WHERE st.organization_id = %s AND st.study_instance_uid = %s")


def rows_from(organization_pk: int, study_uid: str, series_uid: str, row) -> tuple[Study | None, Series | None]:
    if row is None:
        return None, None
    study = Study.from_db(connection.alias, ["id", "organization_id", "study_instance_uid"],
                          [int(row[0]), organization_pk, study_uid])
    series = None
    if row[1] is not None:
        series = Series.from_db(connection.alias, ["id", "study_id", "series_instance_uid"],
                                [int(row[1]), study.pk, series_uid])
        series.study = study
    return study, series


def new_instance(item: Pending, study: Study, series: Series, now) -> Instance:
    """The index row of one instance (not saved yet), under the server-built storage key."""
    organization, parsed = item.organization, item.parsed
    f = parsed.field
    return Instance(
        organization=organization, study=study, series=series, sop_instance_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid, instance_number=f("InstanceNumber"),
        transfer_syntax_uid=parsed.transfer_syntax_uid, number_of_frames=f("NumberOfFrames") or 1,
        rows=f("Rows"), columns=f("Columns"), bits_allocated=f("BitsAllocated"),
        samples_per_pixel=f("SamplesPerPixel"), burned_in_annotation=f("BurnedInAnnotation").upper(),
        size=item.size, sha256=item.sha256, content_sha256=item.content_sha256,
        storage_key=storage_key(organization, parsed.study_uid, parsed.series_uid, parsed.sop_uid),
        pixel_data_offset=parsed.pixel_data_offset, pixel_data_length=parsed.pixel_data_length,
        dicom_json=parsed.dicom_json, received_at=now, received_via=item.source)


def unknown_rows(pending: list[Pending], flush: Flush, organization_pk: int) -> list[tuple[str, str]]:
    """The (study UID, series UID) pairs of the organization's instances whose rows this flush does not know."""
    wanted = {}
    for item in pending:
        if item.organization.pk != organization_pk:
            continue
        study = flush.studies.get((organization_pk, item.parsed.study_uid))
        if study is None or (study.pk, item.parsed.series_uid) not in flush.series:
            wanted[(item.parsed.study_uid, item.parsed.series_uid)] = None
    return list(wanted)


def existing_uids(organization_pk: int, uids: list[str], flush: Flush, *, wanted: list[tuple[str, str]]
                   ) -> set[str]:
    """Which of these SOP Instance UIDs the organization already holds; in the same query, the studies and
    series of the ``wanted`` (study UID, series UID) pairs that exist, kept in ``flush``."""
    instance_table = quoted(Instance._meta.db_table)
    sql = (f"SELECT 0, sop_instance_uid, NULL, NULL, NULL FROM {instance_table} "  # noqa: S608 - values bound
           f"WHERE organization_id = %s AND sop_instance_uid IN ({', '.join(['%s'] * len(uids))})")
    params: list = [organization_pk, *uids]
    if wanted:
        study_uids = list(dict.fromkeys(study for study, _series in wanted))
        series_uids = list(dict.fromkeys(series for _study, series in wanted))
        series_in, studies_in = ", ".join(["%s"] * len(series_uids)), ", ".join(["%s"] * len(study_uids))
        sql += (" UNION ALL SELECT 1, st.study_instance_uid, st.id, se.series_instance_uid, se.id "  # noqa: S608
                f"FROM {quoted(Study._meta.db_table)} st LEFT OUTER JOIN {quoted(Series._meta.db_table)} se "
                f"ON se.study_id = st.id AND se.series_instance_uid IN ({series_in}) "
                f"WHERE st.organization_id = %s AND st.study_instance_uid IN ({studies_in})")
        params += [*series_uids, organization_pk, *study_uids]
    known: set[str] = set()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, uid, study_pk, series_uid, series_pk in cursor.fetchall():
            if kind == 0:
                known.add(uid)
                continue
            found_study, found_series = rows_from(organization_pk, uid, series_uid, (study_pk, series_pk))
            study = flush.studies.setdefault((organization_pk, uid), found_study)
            if found_series is not None:
                found_series.study = study
                flush.series.setdefault((study.pk, series_uid), found_series)
    return known


def create_rows(pending: list[Pending], flush: Flush) -> None:
    """Create the studies, then the series, that no row exists for yet, each kind in one INSERT (a batch of
    many small studies would otherwise cost a lookup and two ``get_or_create`` per study). A row another
    transaction created meanwhile is skipped here (ON CONFLICT DO NOTHING) and found by ``rows_for``."""
    studies: dict[tuple[int, str], Study] = {}
    for item in pending:  # sorted by UIDs: rows are inserted, and locked, in the global order
        key = (item.organization.pk, item.parsed.study_uid)
        if key not in flush.studies and key not in studies:
            studies[key] = Study(organization=item.organization, study_instance_uid=item.parsed.study_uid,
                                 **study_defaults(item.organization, item.parsed, item.jurisdiction))
    for study in insert_rows(list(studies.values()), unique=("organization_id", "study_instance_uid")):
        flush.studies[(study.organization_id, study.study_instance_uid)] = study
    series_rows: dict[tuple[int, str], Series] = {}
    for item in pending:
        study = flush.studies.get((item.organization.pk, item.parsed.study_uid))
        if study is None or (study.pk, item.parsed.series_uid) in flush.series:
            continue
        series_rows.setdefault((study.pk, item.parsed.series_uid), Series(
            study=study, series_instance_uid=item.parsed.series_uid, **series_defaults(item.parsed)))
    for series in insert_rows(list(series_rows.values()), unique=("study_id", "series_instance_uid")):
        flush.series[(series.study_id, series.series_instance_uid)] = series
        flush.created_series.add(series.pk)


def remember(flush: Flush, item: Pending, study: Study, series: Series, series_created: bool,
              modality: str) -> None:
    """Once an instance is in (its savepoint released): reuse its rows, count it."""
    flush.studies[(item.organization.pk, study.study_instance_uid)] = study
    flush.series[(study.pk, series.series_instance_uid)] = series
    series_counts = flush.series_counts.setdefault(series.pk, [0, 0])
    series_counts[0] += 1
    series_counts[1] += item.size
    study_counts = flush.study_counts.setdefault(study.pk, [0, 0, 0])
    study_counts[0] += 1
    study_counts[1] += item.size
    if series_created:
        study_counts[2] += 1
        if modality:
            flush.new_modalities.setdefault(study.pk, []).append(modality)


def add_counters(flush: Flush) -> None:
    """Add the counters of this transaction: increments in SQL, rows in primary-key order (series, then
    studies) so that concurrent batches never deadlock and never lose an update."""
    series_table, study_table = quoted(Series._meta.db_table), quoted(Study._meta.db_table)
    modalities = {}
    if flush.new_modalities:
        # Read under a lock (FOR NO KEY UPDATE: inserts referencing the study are not blocked).
        modalities = dict(Study.objects.select_for_update(no_key=True).filter(pk__in=flush.new_modalities)
                          .order_by("pk").values_list("pk", "modalities_in_study"))
    now = Study._meta.get_field("last_received_at").get_db_prep_save(timezone.now(), connection)
    with sent_together(), connection.cursor() as cursor:
        for pk in sorted(flush.series_counts):
            count, size = flush.series_counts[pk]
            sql = (f"UPDATE {series_table} SET number_of_instances = number_of_instances + %s, "  # noqa: S608
                   "total_size = total_size + %s WHERE id = %s")
            cursor.execute(sql, [count, size, pk])
        for pk in sorted(flush.study_counts):
            count, size, new_series = flush.study_counts[pk]
            # new images for a deleted study bring it back (deleted_at cleared)
            assignments = ["number_of_instances = number_of_instances + %s", "total_size = total_size + %s",
                           "last_received_at = %s", "deleted_at = NULL"]
            params = [count, size, now]
            if new_series:
                assignments.append("number_of_series = number_of_series + %s")
                params.append(new_series)
            if pk in flush.new_modalities:
                current = modalities.get(pk) or ""
                for modality in flush.new_modalities[pk]:
                    if f"\\{modality}\\" not in current:
                        current = (current or "\\") + f"{modality}\\"
                assignments.append("modalities_in_study = %s")
                params.append(current)
            cursor.execute(f"UPDATE {study_table} SET {', '.join(assignments)} WHERE id = %s",  # noqa: S608 - values bound
                           [*params, pk])
