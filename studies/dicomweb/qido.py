"""DICOMweb QIDO-RS (PS3.18 10.6): search studies, series and instances on the study index.

Resources: ``/studies``, ``/studies/{s}/series``, ``/series``, ``/studies/{s}/instances``,
``/studies/{s}/series/{se}/instances``, ``/instances``. Answers are ``application/dicom+json``
arrays (``[]`` with 200 when nothing matches).

Query parameters: attribute keywords or tags (``PatientName`` or ``00100010``) with

- single values, case-sensitive, with ``*`` and ``?`` wildcards (PatientID, AccessionNumber, StudyID…);
- person names and descriptions: the same, case-insensitive (PatientName, ReferringPhysicianName,
  StudyDescription, SeriesDescription, InstitutionName);
- UID lists separated by ``,`` or ``\\`` (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID);
- dates and ranges ``a``, ``a-b``, ``a-``, ``-b`` (StudyDate, SeriesDate, PatientBirthDate); times
  likewise (StudyTime); ModalitiesInStudy / Modality match any of the given codes;
- an empty value (``PatientSex=``) matches everything and asks for the attribute in the answer;

plus ``limit``, ``offset``, ``includefield`` (names, tags or ``all``; repeated or comma-separated)
and ``fuzzymatching`` (``true`` is answered as literal matching, with a Warning header). Anything
else is a 400 naming the parameter. Values arrive percent-decoded (Django decodes the query string).

Who sees what: ``studies.selectors.study_list`` (members see their organizations' studies, a
radiologist the ones granted to them). A study visible only at ``preview`` level is answered
de-identified (``studies.deid.deidentify_json``), and never matches a query on an attribute that
de-identification removes, replaces or shifts (no answering "does the hidden name start with R?").
A study seen blinded (a peer reviewer's ``hide_reports`` grant, selectors.StudyAccess.hide_reports) is
answered without its signed reports' SRs: not found, not counted, not matched.

Cost: one query for the rows of any level (related rows joined, never one query per row), one for
the access levels of granted studies, one audit record per answer that returned studies. A search
within one study sends its rows' query and its audit record to PostgreSQL together, with the check of
a remembered study access when there is one (``_answer_in_study``): one exchange in all
(docs/decisions/0006).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import get_script_prefix, reverse
from pydicom.datadict import tag_for_keyword

from accounts.audit import audit_record
from core.errors import ApplicationError
from core.sql import Converters, RequirementFailed, column_converters, converted, one_round_trip
from studies import deid, page_selectors, policy, selectors, services
from studies.dicom import BULK_PLACEHOLDER, parse_da, uid_problem
from studies.dicomweb.auth import BEARER_QUERY_PARAMS, dicomweb_view
from studies.dicomweb.dicomjson import (
    SPECIFIC_CHARACTER_SET,
    dicom_json_response,
    dicom_json_text_response,
    quote,
    tag_hex,
    text_encoder,
    value_encoder,
)
from studies.models import Instance, Series, Study

STUDY, SERIES, INSTANCE = 0, 1, 2
LEVEL_NAMES = {STUDY: "study", SERIES: "series", INSTANCE: "instance"}
MAX_RESULTS = 5000
MAX_OFFSET = 10_000_000
RESERVED = {"limit", "offset", "includefield", "fuzzymatching", "accept", "charset", *BEARER_QUERY_PARAMS}
WARNING_FUZZY = '299 ReadRoom "The fuzzymatching parameter is not supported. Only literal matching has been performed."'
WARNING_LIMIT = ('299 ReadRoom "The number of results exceeded the maximum supported by the server. '
                 'Additional results can be requested."')


def _bad(message: str, parameter: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_query", fields={parameter: [message]})


# --- matching ------------------------------------------------------------------------------------

def _wildcard(path: str, value: str, *, ci: bool) -> Q:
    """DICOM wildcard matching: ``*`` any run of characters, ``?`` one character."""
    prefix = "i" if ci else ""
    if "*" not in value and "?" not in value:
        return Q(**{f"{path}__{prefix}exact": value})
    core = value.strip("*")
    if not core:
        return Q()  # "*" alone matches everything
    if "*" not in core and "?" not in core:
        lead, trail = value.startswith("*"), value.endswith("*")
        lookup = "contains" if lead and trail else "startswith" if trail else "endswith"
        return Q(**{f"{path}__{prefix}{lookup}": core})
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return Q(**{f"{path}__{prefix}regex": f"^{pattern}$"})


MAX_LIST_VALUES = 500


def _values(value: str, name: str = "") -> list[str]:
    values = [v.strip() for v in re.split(r"[,\\]", value) if v.strip()]
    if len(values) > MAX_LIST_VALUES:
        raise _bad(f"{name}: at most {MAX_LIST_VALUES} values in one query.", name)
    return values


def _match_uids(path: str, value: str, name: str) -> Q:
    uids = _values(value, name)
    for uid in uids:
        problem = uid_problem(uid)
        if problem:
            raise _bad(f"{name}: the UID {uid[:80]!r} {problem}.", name)
    return Q(**{f"{path}__in": uids})


def _date(text: str, name: str) -> date:
    parsed = parse_da(text)
    if parsed is None:
        raise _bad(f"{name}: {text[:40]!r} is not a date (YYYYMMDD) or a range (YYYYMMDD-YYYYMMDD, YYYYMMDD-, "
                   "-YYYYMMDD).", name)
    return parsed


def _match_dates(path: str, value: str, name: str) -> Q:
    if "-" not in value:
        return Q(**{path: _date(value, name)})
    low, _, high = (v.strip() for v in value.partition("-"))
    if not low and not high:
        raise _bad(f"{name}: a range needs at least one end.", name)
    condition = Q()
    if low:
        condition &= Q(**{f"{path}__gte": _date(low, name)})
    if high:
        condition &= Q(**{f"{path}__lte": _date(high, name)})
    return condition


_TIME_RE = re.compile(r"^\d{2,6}(\.\d{1,6})?$")


def _time(text: str, name: str) -> str:
    if not _TIME_RE.match(text) or len(text.split(".")[0]) % 2:
        raise _bad(f"{name}: {text[:40]!r} is not a time (HHMMSS) or a range (HHMMSS-HHMMSS).", name)
    return text


def _match_times(path: str, value: str, name: str) -> Q:
    """Times are stored as sent (``HHMMSS[.ffffff]``); a shorter time means the whole hour or minute."""
    if "-" not in value:
        return Q(**{f"{path}__startswith": _time(value, name)})
    low, _, high = (v.strip() for v in value.partition("-"))
    if not low and not high:
        raise _bad(f"{name}: a range needs at least one end.", name)
    condition = Q()
    if low:
        condition &= Q(**{f"{path}__gte": _time(low, name)})
    if high:
        high = _time(high, name)
        condition &= Q(**{f"{path}__lte": high if "." in high else high.ljust(6, "9") + ".999999"})
    return condition


def _match_int(path: str, value: str, name: str) -> Q:
    try:
        return Q(**{path: int(value)})
    except ValueError:
        raise _bad(f"{name}: {value[:40]!r} is not a number.", name) from None


def _match_codes(path: str, value: str, name: str) -> Q:
    return Q(**{f"{path}__in": [v.upper() for v in _values(value, name)]})


def _match_modalities(path: str, value: str, name: str) -> Q:
    condition = Q()
    for code in _values(value, name):
        condition |= Q(**{f"{path}__contains": f"\\{code.upper()}\\"})
    return condition


MATCHERS: dict[str, Callable[[str, str, str], Q]] = {
    "text": lambda path, value, name: _wildcard(path, value, ci=False),
    "text_ci": lambda path, value, name: _wildcard(path, value, ci=True),
    "uid": _match_uids,
    "date": _match_dates,
    "time": _match_times,
    "int": _match_int,
    "codes": _match_codes,
    "modalities": _match_modalities,
}


# --- the attributes we index ---------------------------------------------------------------------

@dataclass(frozen=True)
class Attr:
    """One attribute QIDO can match on and/or return, read from the index (never from files)."""

    tag: str
    vr: str
    level: int
    field: str | None = None  # the model field on its level's model (None: a constant)
    match: str | None = None  # a MATCHERS key, or None: returned but not matchable
    constant: str | None = None
    multi: bool = False  # a backslash-delimited multi-value field

    def encoder(self) -> Callable[[object], dict]:
        """value of ``field`` → DICOM JSON attribute (PS3.18 F.2)."""
        return value_encoder(self.vr, constant=self.constant, multi_value=self.multi, computed=self.field is None)

    def text_encoder(self) -> Callable[[object], str]:
        return text_encoder(self.tag, self.vr, constant=self.constant, multi_value=self.multi,
                            computed=self.field is None)


ATTRIBUTES: dict[str, Attr] = {a.tag: a for a in [
    # study
    Attr("00080005", "CS", STUDY, constant=SPECIFIC_CHARACTER_SET),
    Attr("00080020", "DA", STUDY, "study_date", "date"),
    Attr("00080030", "TM", STUDY, "study_time", "time"),
    Attr("00080050", "SH", STUDY, "accession_number", "text"),
    Attr("00080056", "CS", STUDY, constant="ONLINE"),
    Attr("00080061", "CS", STUDY, "modalities_in_study", "modalities", multi=True),
    Attr("00080080", "LO", STUDY, "institution_name", "text_ci"),
    Attr("00080090", "PN", STUDY, "referring_physician_name", "text_ci"),
    Attr("00081030", "LO", STUDY, "study_description", "text_ci"),
    Attr("00100010", "PN", STUDY, "patient_name", "text_ci"),
    Attr("00100020", "LO", STUDY, "patient_id", "text"),
    Attr("00100030", "DA", STUDY, "patient_birth_date", "date"),
    Attr("00100040", "CS", STUDY, "patient_sex", "codes"),
    Attr("0020000D", "UI", STUDY, "study_instance_uid", "uid"),
    Attr("00200010", "SH", STUDY, "study_id", "text"),
    Attr("00201206", "IS", STUDY, "number_of_series"),
    Attr("00201208", "IS", STUDY, "number_of_instances"),
    # series
    Attr("00080021", "DA", SERIES, "series_date", "date"),
    Attr("00080060", "CS", SERIES, "modality", "codes"),
    Attr("0008103E", "LO", SERIES, "series_description", "text_ci"),
    Attr("00180015", "CS", SERIES, "body_part_examined", "text"),
    Attr("0020000E", "UI", SERIES, "series_instance_uid", "uid"),
    Attr("00200011", "IS", SERIES, "series_number", "int"),
    Attr("00201209", "IS", SERIES, "number_of_instances"),
    # instance
    Attr("00020010", "UI", INSTANCE, "transfer_syntax_uid", "uid"),
    Attr("00080016", "UI", INSTANCE, "sop_class_uid", "uid"),
    Attr("00080018", "UI", INSTANCE, "sop_instance_uid", "uid"),
    Attr("00200013", "IS", INSTANCE, "instance_number", "int"),
    Attr("00280008", "IS", INSTANCE, "number_of_frames"),
    Attr("00280010", "US", INSTANCE, "rows"),
    Attr("00280011", "US", INSTANCE, "columns"),
    Attr("00280100", "US", INSTANCE, "bits_allocated"),
]}
RETRIEVE_URL = "00081190"
# What every answer carries at each level (PS3.18 Tables 10.6.3-3 to -5, as far as the index holds them).
DEFAULTS = {
    STUDY: ["00080005", "00080020", "00080030", "00080050", "00080056", "00080061", "00080090", "00081030",
            "00100010", "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206", "00201208"],
    SERIES: ["00080005", "00080060", "0008103E", "0020000D", "0020000E", "00200011", "00201209"],
    INSTANCE: ["00080005", "00080016", "00080018", "00080056", "0020000D", "0020000E", "00200013", "00280008",
               "00280010", "00280011", "00280100"],
}
PATH_PREFIX = {(STUDY, STUDY): "", (SERIES, STUDY): "study__", (SERIES, SERIES): "",
               (INSTANCE, STUDY): "study__", (INSTANCE, SERIES): "series__", (INSTANCE, INSTANCE): ""}


# What a preview may be matched on: attributes on the preview allow-list whose preview value is the stored
# value itself (UIDs, numbers, times of day) and the modality codes. Everything else is left out or changed
# in a preview (cleaned text, shifted dates, age bands), so matching on it would reveal the stored value.
_PREVIEW_MATCHABLE_VRS = ("UI", "IS", "US", "DS", "TM")
_PREVIEW_MATCHABLE_CODES = (f"{tag_for_keyword('Modality'):08X}", f"{tag_for_keyword('ModalitiesInStudy'):08X}")


def _hidden_in_preview(tag: str) -> bool:
    """Not on the preview allow-list, or shown changed there: matching on it would leak the real value."""
    if tag in _PREVIEW_MATCHABLE_CODES:
        return False
    return tag not in deid.ALLOWED or deid.ALLOWED[tag] not in _PREVIEW_MATCHABLE_VRS


def _blinded_modalities_match(request: HttpRequest, level: int, codes: list[str]) -> Q:
    """ModalitiesInStudy, as stored, counts the signed reports' SR series: a study the actor sees blinded
    (selectors.StudyAccess.hide_reports) matches only on the modalities of the series it shows."""
    if request.actor.user is None:
        return Q()  # an organization's key holds no grants: nothing is blinded for it
    study = "pk" if level == STUDY else "study_id"
    shown = selectors.without_signed_reports(Series.objects.filter(study_id=OuterRef(study),
                                                                   modality__in=[c.upper() for c in codes]))
    return ~Q(**{f"{study}__in": selectors.blinded_study_ids(actor=request.actor)}) | Q(Exists(shown))


# --- the query -----------------------------------------------------------------------------------

@dataclass
class Query:
    level: int
    conditions: list[Q] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)  # tags given as matching keys (returned too)
    protected: bool = False  # a condition on an attribute preview access must not reveal
    include: set[str] = field(default_factory=set)
    include_all: bool = False
    limit: int = MAX_RESULTS
    offset: int = 0
    limited_by_server: bool = False
    warnings: list[str] = field(default_factory=list)


def _int_param(request: HttpRequest, name: str, minimum: int) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be a whole number (got {raw[:20]!r}).", name) from None
    if value < minimum:
        raise _bad(f"{name} must be at least {minimum}.", name)
    return value


def _check_accept(request: HttpRequest) -> None:
    accept = request.META.get("HTTP_ACCEPT", "").lower()
    if accept and not any(t in accept for t in ("json", "*/*", "application/*")):
        raise ApplicationError("QIDO-RS answers application/dicom+json only: accept it.", code="not_acceptable",
                               status_code=406)


def parse_query(request: HttpRequest, level: int) -> Query:
    """Read QIDO-RS query parameters for a search at ``level``; a 400 names whatever is wrong."""
    _check_accept(request)
    query = Query(level=level)
    for name in request.GET:
        values = request.GET.getlist(name)
        if name in RESERVED:
            if name != "includefield" and len(values) > 1:
                raise _bad(f"{name} is given {len(values)} times.", name)
            continue
        tag = tag_hex(name)
        attr = ATTRIBUTES.get(tag) if tag else None
        if tag is None:
            raise _bad(f"Unknown query parameter {name!r}: use DICOM attribute keywords or tags, limit, offset, "
                       "includefield or fuzzymatching.", name)
        if attr is None or attr.match is None:
            raise _bad(f"{name} cannot be searched on here; ask for it with includefield instead.", name)
        if attr.level > level:
            raise _bad(f"{name} is a {LEVEL_NAMES[attr.level]}-level attribute: search the "
                       f"{LEVEL_NAMES[attr.level]} resources to match on it.", name)
        if len(values) > 1:
            raise _bad(f"{name} is given {len(values)} times: give it once (UIDs and codes as a comma-separated "
                       "list).", name)
        value = values[0].strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise _bad(f"{name}: control characters are not allowed in a query value.", name)
        query.matched.append(tag)
        if value == "" or value == "*":
            continue  # universal matching: returned, not filtered
        path = PATH_PREFIX[(level, attr.level)] + attr.field
        query.conditions.append(MATCHERS[attr.match](path, value, name))
        if attr.field == "modalities_in_study":
            query.conditions.append(_blinded_modalities_match(request, level, _values(value, name)))
        query.protected = query.protected or _hidden_in_preview(tag)

    for raw in request.GET.getlist("includefield"):
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name.lower() == "all":
                query.include_all = True
                continue
            tag = tag_hex(name)
            if tag is None:
                raise _bad(f"includefield: {name[:64]!r} is not a DICOM attribute keyword or tag.", "includefield")
            query.include.add(tag)

    fuzzy = request.GET.get("fuzzymatching")
    if fuzzy is not None:
        if fuzzy.lower() not in ("true", "false"):
            raise _bad("fuzzymatching must be true or false.", "fuzzymatching")
        if fuzzy.lower() == "true":
            query.warnings.append(WARNING_FUZZY)
    limit = _int_param(request, "limit", 1)
    if limit is None or limit > MAX_RESULTS:
        query.limited_by_server = True
    query.limit = min(limit or MAX_RESULTS, MAX_RESULTS)
    query.offset = _int_param(request, "offset", 0) or 0
    if query.offset > MAX_OFFSET:
        raise _bad(f"offset must be at most {MAX_OFFSET}.", "offset")
    return query


# --- the answer ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    """One QIDO resource: which rows it returns, within what, and whose default attributes."""

    level: int
    defaults: tuple[int, ...]
    fetched: str


STUDIES = Resource(STUDY, (STUDY,), "qido:studies")
STUDY_SERIES = Resource(SERIES, (SERIES,), "qido:series")
ALL_SERIES = Resource(SERIES, (STUDY, SERIES), "qido:series")
STUDY_INSTANCES = Resource(INSTANCE, (SERIES, INSTANCE), "qido:instances")
SERIES_INSTANCES = Resource(INSTANCE, (INSTANCE,), "qido:instances")
ALL_INSTANCES = Resource(INSTANCE, (STUDY, SERIES, INSTANCE), "qido:instances")


def _ordered(queryset: QuerySet, level: int) -> QuerySet:
    if level == STUDY:
        return queryset.order_by(F("study_date").desc(nulls_last=True), "-study_time", "-pk")
    if level == SERIES:
        return queryset.order_by("study_id", F("series_number").asc(nulls_last=True), "pk")
    return queryset.order_by("study_id", F("series__series_number").asc(nulls_last=True), "series_id",
                             F("instance_number").asc(nulls_last=True), "pk")


# Row keys (``QuerySet.values``) every answer needs: who owns the study, and the UIDs of the URL.
STUDY_PK, ORG, STUDY_UID, SERIES_UID, SOP_UID = "_study_pk", "_org", "_study_uid", "_series_uid", "_sop_uid"
IDENTITY = {
    STUDY: {STUDY_PK: F("pk"), ORG: F("organization_id"), STUDY_UID: F("study_instance_uid")},
    SERIES: {STUDY_PK: F("study_id"), ORG: F("study__organization_id"), STUDY_UID: F("study__study_instance_uid"),
             SERIES_UID: F("series_instance_uid")},
    INSTANCE: {STUDY_PK: F("study_id"), ORG: F("study__organization_id"),
               STUDY_UID: F("study__study_instance_uid"), SERIES_UID: F("series__series_instance_uid"),
               SOP_UID: F("sop_instance_uid")},
}


Column = tuple[str, str | None, Callable | None, Callable | None]  # (tag, row key, dict encoder, text encoder)


@functools.lru_cache(maxsize=512)
def _columns(resource: Resource, include_all: bool, include: frozenset[str],
             matched: tuple[str, ...]) -> tuple[Column, ...]:
    """The answer's attributes and their encoders, per shape of request (a viewer repeats a few shapes)."""
    tags: list[str] = []
    for level in resource.defaults:
        tags += DEFAULTS[level]
    if include_all:
        tags += [t for t, a in ATTRIBUTES.items() if a.level <= resource.level]
    tags += [t for t in include if t in ATTRIBUTES and ATTRIBUTES[t].level <= resource.level]
    tags += matched
    columns: list[Column] = []
    for tag in sorted(set(tags) | {RETRIEVE_URL}):
        if tag == RETRIEVE_URL:
            columns.append((tag, None, None, None))
            continue
        attr = ATTRIBUTES[tag]
        key = PATH_PREFIX[(resource.level, attr.level)] + attr.field if attr.field else None
        columns.append((tag, key, attr.encoder(), attr.text_encoder()))
    return tuple(columns)


@functools.lru_cache(maxsize=8)
def _studies_path(script_prefix: str) -> str:
    """``reverse("dicomweb_studies")``, which ``script_prefix`` keys (reversing it was 3 % of a scoped search)."""
    return reverse("dicomweb_studies")


class _Rows:
    """How to turn one ``values()`` row into DICOM JSON, worked out once per answer."""

    def __init__(self, request: HttpRequest, resource: Resource, query: Query) -> None:
        self.level = resource.level
        self.studies_url = request.build_absolute_uri(_studies_path(get_script_prefix()))
        self.header = resource.level == INSTANCE and (query.include_all or any(t not in ATTRIBUTES
                                                                                for t in query.include))
        self.header_tags = None if query.include_all else [t for t in query.include if t not in ATTRIBUTES]
        self.columns = _columns(resource, query.include_all, frozenset(query.include), tuple(query.matched))

    def keys(self) -> tuple[list[str], dict]:
        names = sorted({c[1] for c in self.columns if c[1]} | ({"dicom_json"} if self.header else set()))
        return names, IDENTITY[self.level]

    def url(self, row: dict) -> str:
        url = f"{self.studies_url}/{row[STUDY_UID]}"
        if self.level >= SERIES:
            url += f"/series/{row[SERIES_UID]}"
        if self.level == INSTANCE:
            url += f"/instances/{row[SOP_UID]}"
        return url

    def json(self, row: dict) -> dict:
        """The row as a DICOM JSON object (what de-identification works on)."""
        url = self.url(row)
        body = {tag: (encode(row[key] if key else None) if encode else {"vr": "UR", "Value": [url]})
                for tag, key, encode, _text in self.columns}
        if self.header:
            stored = json.loads(row["dicom_json"].replace(BULK_PLACEHOLDER, url))
            wanted = stored if self.header_tags is None else {t: stored[t] for t in self.header_tags if t in stored}
            body = dict(sorted({**wanted, **body}.items()))
        return body

    def text(self, row: dict) -> str:
        """The same object as JSON text, built directly (the common case: full access, index attributes only)."""
        if self.header:
            return _dumps(self.json(row))
        url_text = f'"{RETRIEVE_URL}":{{"vr":"UR","Value":[{quote(self.url(row))}]}}'
        return "{" + ",".join(text(row[key] if key else None) if text else url_text
                              for _tag, key, _enc, text in self.columns) + "}"


def _dumps(body: dict) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Within:
    """The one row a study-scoped search is confined to: a study's series or instances, a series' instances."""

    model: type
    field: str  # "study_id" or "series_id"
    pk: int
    hide_reports: bool = False  # a blinded reviewer's search (selectors.StudyAccess.hide_reports)

    def queryset(self) -> QuerySet:
        rows = self.model.objects.filter(**{self.field: self.pk})
        return selectors.without_signed_reports(rows) if self.hide_reports else rows


def _answer(request: HttpRequest, resource: Resource, query: Query, source: QuerySet | Within, *,
            access: selectors.StudyAccess | None = None, verify: bool = False) -> HttpResponse:
    """Run the query (one SQL query for the rows of ``source``), build DICOM JSON, de-identify preview rows,
    audit. ``access``: the search is within that study (``source`` is then a ``Within``); ``verify``: that
    access is a remembered one, checked by the database first in the same round trip (raises
    ``RequirementFailed`` when it no longer holds, having read and recorded nothing).

    A search within one study is audited as an access to that study, whatever it finds: the record does not
    depend on the rows, so it goes to the database together with the rows' query, in one round trip, and
    is committed before anything is sent. A search across studies is audited with the studies it shows."""
    shape = _Rows(request, resource, query)
    names, identity = shape.keys()
    if access is not None:
        with one_round_trip():
            if verify:
                selectors.study_access_verify(actor=request.actor, access=access)
            read_rows = _fetch(source, resource.level, query, names, identity)
            services.study_access_record(actor=request.actor, access=access, fetched=resource.fetched,
                                         request=request)
        rows = read_rows()
    else:
        rows = _fetch(source, resource.level, query, names, identity)()
    headers = {}
    warnings = list(query.warnings)
    if len(rows) > query.limit:
        rows = rows[:query.limit]
        if query.limited_by_server:
            warnings.append(WARNING_LIMIT)
    if warnings:
        headers["Warning"] = ", ".join(warnings)

    if access is not None:
        levels = {access.study.pk: access.level}
        blinded = {access.study.pk} if access.hide_reports else set()
    else:
        owners = {row[STUDY_PK]: row[ORG] for row in rows}  # study_accesses reads only pk and organization_id
        accesses = selectors.study_accesses(actor=request.actor, studies=[
            SimpleNamespace(pk=pk, organization_id=org) for pk, org in owners.items()])
        levels = {pk: a.level for pk, a in accesses.items()}
        blinded = {pk for pk, a in accesses.items() if a.hide_reports}
    if blinded:
        _count_without_reports(rows, shape, blinded)
    payload: list[str] = []
    shown: list[tuple[str, str]] = []
    for row in rows:
        level = levels.get(row[STUDY_PK])
        if level is None:
            continue
        if level == policy.FULL:
            payload.append(shape.text(row))
        else:
            owner = SimpleNamespace(organization_id=row[ORG], study_instance_uid=row[STUDY_UID])
            payload.append(_dumps(deid.deidentify_json(shape.json(row), study_key=deid.study_key_for(owner))))
        shown.append((row[STUDY_UID], level))
    if access is None and payload:
        _audit_search(request, resource, shown)
    return dicom_json_text_response("[" + ",".join(payload) + "]", headers=headers)


# Counters the index stores per study and series, which count the signed reports too.
_STUDY_SERIES, _STUDY_INSTANCES, _MODALITIES, _SERIES_INSTANCES = "00201206", "00201208", "00080061", "00201209"


def _count_without_reports(rows: list[dict], shape: _Rows, blinded: set[int]) -> None:
    """Rows of studies seen blinded get the counters and modalities of what they show (one query)."""
    counted = [(tag, key) for tag, key, _enc, _text in shape.columns
               if key and tag in (_STUDY_SERIES, _STUDY_INSTANCES, _MODALITIES, _SERIES_INSTANCES)]
    if not counted:
        return
    totals = selectors.blinded_totals(study_ids=blinded)
    for row in rows:
        if row[STUDY_PK] not in blinded:
            continue
        shown = totals.get(row[STUDY_PK], selectors.BlindedTotals())
        for tag, key in counted:
            if tag == _STUDY_SERIES:
                row[key] = shown.number_of_series
            elif tag == _STUDY_INSTANCES:
                row[key] = shown.number_of_instances
            elif tag == _MODALITIES:
                row[key] = shown.modalities_in_study(row[key])
            else:
                row[key] = shown.series_instances.get(row[SERIES_UID], 0)


def _fetch(base: QuerySet | Within, level: int, query: Query, names: list[str],
           identity: dict) -> Callable[[], list[dict]]:
    """The answer's rows (one more than the limit, to tell whether there are more), as a function that reads
    them: one SQL query.

    A search within one row (``Within``) without matching keys — how viewers list a study's series and a
    series' instances — reruns SQL compiled once per shape with only that id changed (building and
    compiling the ORM query costs more than running it); that query is sent at once, so that it can share
    a round trip, and read by the function. Otherwise the ORM's query runs when the function is called."""
    window = (query.offset, query.offset + query.limit + 1)
    if isinstance(base, Within) and not query.conditions and not base.hide_reports:
        sql, keys, converters = _compiled_within(base.model, base.field, level, tuple(names), window,
                                                 connection.vendor)
        cursor = connection.cursor()
        cursor.execute(sql, [base.pk])

        def read() -> list[dict]:
            with cursor:
                return [dict(zip(keys, converted(row, converters), strict=True)) for row in cursor.fetchall()]
        return read
    queryset = base.queryset() if isinstance(base, Within) else base
    rows = _ordered(queryset.filter(*query.conditions), level).values(*names, **identity)[slice(*window)]
    return lambda: list(rows)


_UNSET_ID = -7_000_000_001  # stands for the scoping id while a shape is compiled


@functools.lru_cache(maxsize=256)
def _compiled_within(model, scope_field: str, level: int, names: tuple[str, ...], window: tuple[int, int],
                     vendor: str) -> tuple[str, list[str], Converters]:
    """SQL, column keys and value converters of ``_fetch``'s query for one shape (see there)."""
    queryset = model.objects.filter(**{scope_field: _UNSET_ID})
    queryset = _ordered(queryset, level).values(*names, **IDENTITY[level])[slice(*window)]
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    if list(params) != [_UNSET_ID]:
        raise AssertionError(f"the scoped query has parameters besides the scope: {params!r}")
    query = queryset.query
    # As QuerySet.values() names the columns and converts their values (ValuesIterable, results_iter).
    keys = list(query.selected) if query.selected else [*query.extra_select, *query.values_select,
                                                         *query.annotation_select]
    return sql, keys, column_converters(column for column, _, _ in compiler.select[:compiler.col_count])


def _audit_search(request: HttpRequest, resource: Resource, shown: list[tuple[str, str]]) -> None:
    by_level: dict[str, list[str]] = {policy.FULL: [], policy.PREVIEW: []}
    for uid, level in dict.fromkeys(shown):
        by_level[level].append(uid)
    actor = request.actor
    audit_record(action="study.searched", actor=actor.user, request=request, organization=actor.active_organization,
                 object_type="studies.study",
                 extra={"fetched": resource.fetched, "full": by_level[policy.FULL],
                        "preview": by_level[policy.PREVIEW], "results": len(shown),
                        "query": {k: request.GET.get(k) for k in request.GET if k not in BEARER_QUERY_PARAMS},
                        **({"api_key": actor.api_key.prefix} if actor.api_key else {})}, phi_read=True)


def _visible_studies(request: HttpRequest, query: Query) -> QuerySet[Study]:
    studies = selectors.study_list(actor=request.actor)
    if query.protected:
        studies = studies.filter(page_selectors.study_full_access_condition(actor=request.actor))
    return studies


def _answer_in_study(request: HttpRequest, resource: Resource, query: Query, study_uid: str,
                     model: type) -> HttpResponse:
    """A search for a study's series or instances. A viewer repeats these for the same study: the access
    study_get last answered this principal for it is tried first, verified by the database in the same round
    trip as the rows and the audit record (one exchange instead of two). If it no longer holds, that round
    trip did nothing, and the study is looked up again as it is without a remembered answer."""
    remembered = selectors.study_get_remembered(actor=request.actor, study_uid=study_uid)
    if remembered is not None and (remembered.is_full or not query.protected):
        try:
            return _answer(request, resource, query,
                           Within(model, "study_id", remembered.study.pk, remembered.hide_reports),
                           access=remembered, verify=True)
        except RequirementFailed:
            pass
    access = _study_access(request, study_uid, query)
    if access is None:
        return dicom_json_response([])
    return _answer(request, resource, query, Within(model, "study_id", access.study.pk, access.hide_reports),
                   access=access)


def _study_access(request: HttpRequest, study_uid: str, query: Query) -> selectors.StudyAccess | None:
    access = selectors.study_get(actor=request.actor, study_uid=study_uid)
    if query.protected and not access.is_full:
        return None  # a preview study never matches on what its preview hides
    return access


# --- views ---------------------------------------------------------------------------------------

@dicomweb_view(methods=["GET"])
def search_studies(request: HttpRequest) -> HttpResponse:
    query = parse_query(request, STUDY)
    return _answer(request, STUDIES, query, _visible_studies(request, query))


@dicomweb_view(methods=["GET"])
def search_all_series(request: HttpRequest) -> HttpResponse:
    query = parse_query(request, SERIES)
    series = Series.objects.filter(study__in=_visible_studies(request, query))
    return _answer(request, ALL_SERIES, query, selectors.signed_reports_hidden_from(actor=request.actor,
                                                                                     queryset=series))


@dicomweb_view(methods=["GET"])
def search_all_instances(request: HttpRequest) -> HttpResponse:
    query = parse_query(request, INSTANCE)
    instances = Instance.objects.filter(study__in=_visible_studies(request, query))
    return _answer(request, ALL_INSTANCES, query, selectors.signed_reports_hidden_from(actor=request.actor,
                                                                                       queryset=instances))


@dicomweb_view(methods=["GET"])
def search_series(request: HttpRequest, study_uid: str) -> HttpResponse:
    return _answer_in_study(request, STUDY_SERIES, parse_query(request, SERIES), study_uid, Series)


@dicomweb_view(methods=["GET"])
def search_study_instances(request: HttpRequest, study_uid: str) -> HttpResponse:
    return _answer_in_study(request, STUDY_INSTANCES, parse_query(request, INSTANCE), study_uid, Instance)


@dicomweb_view(methods=["GET"])
def search_series_instances(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    query = parse_query(request, INSTANCE)
    access = _study_access(request, study_uid, query)
    if access is None:
        return dicom_json_response([])
    series = selectors.series_get(access=access, series_uid=series_uid)  # 404 when the study has no such series
    return _answer(request, SERIES_INSTANCES, query, Within(Instance, "series_id", series.pk, access.hide_reports),
                   access=access)

