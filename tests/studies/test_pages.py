"""The study pages: list (search, filters, sort, pages, ingest state, counts), a study's page (series with
thumbnails, jurisdiction, deletion, audit trail), who reaches which, and that a preview shows no PHI."""

from __future__ import annotations

import io
import re
import uuid
import zoneinfo
from datetime import date, datetime, timedelta

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import policy as accounts_policy
from accounts.models import AuditEvent
from studies import services, synthetic
from studies.ingest import Source, ingest_files
from studies.models import Instance, Series, Study, StudyAccessGrant
from studies.tasks import purge_deleted_studies
from tests.conftest import CAST

PRINCIPALS = list(CAST)
CANARY = "ZQXCANARY"


def actor(user):
    return accounts_policy.actor_for_user(user)


def ingest(org, datasets):
    files = [(f"f{i}.dcm", io.BytesIO(synthetic.to_bytes(ds))) for i, ds in enumerate(datasets)]
    outcomes = ingest_files(organization=org, files=files, source=Source.UPLOAD)
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes]
    return Study.objects.get(organization=org, study_instance_uid=datasets[0].StudyInstanceUID)


def spec(n=0, **kwargs):
    defaults = {"patient": synthetic.demo_patient(n), "accession": f"ACC{n:06d}", "description": "CT CHEST",
                "study_date": date(2026, 3, 1) + timedelta(days=n)}
    return synthetic.StudySpec(**{**defaults, **kwargs})


@pytest.fixture
def ct_study(cast):
    return ingest(cast.center, synthetic.ct_series(spec(0), slices=3, size=32))


@pytest.fixture
def canary_study(cast):
    """A study whose every PHI attribute (nested and private too) carries the canary string."""
    datasets = [synthetic.with_private_and_nested_phi(ds, CANARY) for ds in synthetic.ct_series(spec(3), slices=2,
                                                                                               size=32)]
    return ingest(cast.center, datasets)


def grant(cast, study, level):
    return services.study_access_grant_create(actor=actor(cast.center_admin), study=study, user=cast.radiologist,
                                              level=level, reason="offered read",
                                              expires_at=timezone.now() + timedelta(days=1))


def make_rows(org, n, **fields):
    """Index rows only (no files): enough for the list's counting, paging and query-count tests."""
    now = timezone.now()
    Study.objects.bulk_create([
        Study(organization=org, study_instance_uid=f"{synthetic.UID_ROOT}9.{org.pk}.{i}.{uuid.uuid4().int % 10**6}",
              patient_name=f"Patient^{i:03d}", patient_id=f"PID{i:05d}", accession_number=f"A{i:05d}",
              study_description="BULK", study_date=date(2026, 1, 1) + timedelta(days=i % 60),
              modalities_in_study="\\CT\\", jurisdiction_country="US", jurisdiction_region="TX",
              number_of_series=2, number_of_instances=10, total_size=1024 * 1024,
              received_at=now - timedelta(hours=1), last_received_at=now - timedelta(hours=1), **fields)
        for i in range(n)])


# The page's CSRF tokens are random letters and digits: "MRN" or "1954" turned up inside one in CI.
CSRF_TOKEN = re.compile(r'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[A-Za-z0-9]+"')


def page_text(response) -> str:
    """The page, without its CSRF tokens (random text that the PHI checks must not read)."""
    return CSRF_TOKEN.sub(r'\1"', response.content.decode())


# --- who reaches which page ------------------------------------------------------------------------

LIST_OK = {"center_admin", "technologist", "center_viewer", "radiologist", "other_admin"}
UPLOAD_OK = {"center_admin", "technologist", "other_admin"}  # other_admin: into their own center


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_study_list_and_upload_pages_answer_their_principals_and_404_everyone_else(cast, login, principal):
    client = login(cast.users[principal])
    assert client.get(reverse("study_list")).status_code == (200 if principal in LIST_OK else 404)
    assert client.get(reverse("study_upload")).status_code == (200 if principal in UPLOAD_OK else 404)


@pytest.mark.parametrize("url_name", ["study_list", "study_upload"])
def test_anonymous_visitors_are_sent_to_sign_in(db, url_name):
    url = reverse(url_name)
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={url}"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_study_page_is_for_the_centers_viewing_roles_and_404_for_everyone_else(cast, login, ct_study, principal):
    expected = 200 if principal in {"center_admin", "technologist", "center_viewer"} else 404
    assert login(cast.users[principal]).get(reverse("study_detail", args=[ct_study.public_id])).status_code == expected


def test_a_missing_study_and_another_centers_study_look_the_same(cast, login, ct_study):
    foreign = ingest(cast.other_center, synthetic.ct_series(spec(1), slices=1, size=16))
    client = login(cast.center_admin)
    for public_id in (foreign.public_id, uuid.uuid4()):
        for name, method in (("study_detail", "get"), ("study_delete", "get"), ("study_delete", "post"),
                             ("study_jurisdiction", "post"), ("study_restore", "post")):
            response = getattr(client, method)(reverse(name, args=[public_id]),
                                               {"reason": "x", "country": "US", "region": "NY"})
            assert response.status_code == 404, (name, method)
    foreign.refresh_from_db()
    assert foreign.deleted_at is None
    assert foreign.jurisdiction == "US-FL"


def test_member_sees_own_centers_studies_only(cast, login, ct_study):
    ingest(cast.other_center, synthetic.ct_series(spec(1), slices=1, size=16))
    response = login(cast.technologist).get(reverse("study_list"))
    assert [row.public_id for row in response.context["rows"]] == [ct_study.public_id]
    text = page_text(response)
    assert "Rivera, Ana" in text
    assert "Nguyen" not in text  # the other center's patient


def test_navigation_offers_studies_to_viewing_roles_and_upload_to_senders(cast, login):
    def nav(principal):
        html = page_text(login(cast.users[principal]).get("/"))
        return re.search(r'<nav class="mainnav".*?</nav>', html, re.S).group(0)

    assert "Studies" in nav("technologist")
    assert "Upload" in nav("technologist")
    assert "Studies" in nav("center_admin")
    assert "Upload" in nav("center_admin")
    assert "Studies" in nav("center_viewer")
    assert "Upload" not in nav("center_viewer")
    assert "Studies" in nav("radiologist")
    assert "Upload" not in nav("radiologist")
    for principal in ("center_finance", "patient", "platform_staff"):
        assert "Studies" not in nav(principal), principal
        assert "Upload" not in nav(principal), principal


# --- the list ----------------------------------------------------------------------------------------

def test_list_shows_counts_size_jurisdiction_and_ingest_state(cast, login, ct_study):
    response = login(cast.technologist).get(reverse("study_list"))
    row = response.context["rows"][0]
    assert (row.number_of_series, row.number_of_instances) == (1, 3)
    assert row.total_size == sum(i.size for i in Instance.objects.filter(study=ct_study))
    assert row.ingest_state == "receiving"  # the images arrived just now
    text = page_text(response)
    assert "US-TX" in text
    assert "receiving" in text

    Study.objects.filter(pk=ct_study.pk).update(last_received_at=timezone.now() - timedelta(minutes=3))
    response = login(cast.technologist).get(reverse("study_list"))
    assert response.context["rows"][0].ingest_state == "complete"
    assert ">complete<" in page_text(response)


def test_receiving_says_when_it_ends_in_the_viewers_time_zone(cast, login, ct_study):
    last = timezone.now().replace(microsecond=0) - timedelta(seconds=30)
    Study.objects.filter(pk=ct_study.pk).update(last_received_at=last)
    cast.technologist.time_zone = "Asia/Tokyo"
    cast.technologist.save()
    until = (last + timedelta(minutes=2)).astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    client = login(cast.technologist)
    listing = page_text(client.get(reverse("study_list")))
    assert f"until {until:%H:%M}" in listing
    assert f"The study counts as complete at {until:%H:%M} JST unless another image arrives first" in listing
    detail = page_text(client.get(reverse("study_detail", args=[ct_study.public_id])))
    assert f"Receiving — more images may still arrive until {until:%H:%M} JST" in detail

    Study.objects.filter(pk=ct_study.pk).update(last_received_at=last - timedelta(minutes=3))
    detail = page_text(client.get(reverse("study_detail", args=[ct_study.public_id])))
    assert "more images may still arrive" not in detail
    assert ">complete<" in detail


def test_list_shows_received_time_in_the_viewers_time_zone(cast, login, ct_study):
    received = datetime(2026, 3, 10, 15, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))
    Study.objects.filter(pk=ct_study.pk).update(received_at=received)
    cast.technologist.time_zone = "Asia/Tokyo"
    cast.technologist.save()
    text = page_text(login(cast.technologist).get(reverse("study_list")))
    assert "Mar 11, 00:30" in text  # 15:30 UTC is 00:30 the next day in Tokyo
    assert 'title="In your time zone, Asia/Tokyo">Received' in text


@pytest.mark.parametrize(("query", "expected"), [
    ("Rivera", {0}), ("rivera ana", {0}), ("Nguyen, Minh", {1}), ("MRN100202", {2}), ("ACC000001", {1}),
    ("HEAD", {2}), ("nobody", set()),
])
def test_search_matches_patient_name_id_accession_and_description(cast, login, query, expected):
    studies = [ingest(cast.center, synthetic.ct_series(spec(n, description="CT HEAD" if n == 2 else "CT CHEST"),
                                                       slices=1, size=16)) for n in range(3)]
    response = login(cast.technologist).get(reverse("study_list"), {"q": query})
    assert {studies.index(Study.objects.get(public_id=r.public_id)) for r in response.context["rows"]} == expected


def test_filters_by_modality_date_range_and_jurisdiction(cast, login):
    ct = ingest(cast.center, synthetic.ct_series(spec(0, study_date=date(2026, 2, 1)), slices=1, size=16))
    mg = ingest(cast.center, synthetic.mammogram(spec(1, study_date=date(2026, 2, 20)), rows=32, cols=24))
    us = ingest(cast.center, synthetic.ultrasound(spec(2, study_date=date(2026, 3, 5)), frames=1))
    Study.objects.filter(pk=us.pk).update(jurisdiction_region="OK")
    client = login(cast.technologist)

    def ids(**params):
        return {r.public_id for r in client.get(reverse("study_list"), params).context["rows"]}

    assert ids(modality="MG") == {mg.public_id}
    assert ids(modality="CT") == {ct.public_id}
    assert ids(date_from="2026-02-10") == {mg.public_id, us.public_id}
    assert ids(date_from="2026-02-10", date_to="2026-02-28") == {mg.public_id}
    assert ids(jurisdiction="US-OK") == {us.public_id}
    assert ids(jurisdiction="US-TX", modality="US") == set()
    jurisdictions = client.get(reverse("study_list")).context["form"].fields["jurisdiction"].choices
    assert [value for value, _ in jurisdictions if value] == ["US-OK", "US-TX"]


def test_sorts_by_study_date_received_time_and_patient(cast, login):
    now = timezone.now()
    studies = {}
    for n, (name, day, hours_ago) in enumerate([("Brooks^Samuel", 5, 1), ("Adams^Zoe", 9, 3), ("Chen^Li", 1, 2)]):
        patient = synthetic.Patient(name=name, patient_id=f"P{n}", birth_date=date(1980, 1, 1), sex="F")
        study = ingest(cast.center, synthetic.ct_series(spec(n, patient=patient, study_date=date(2026, 1, day)),
                                                        slices=1, size=16))
        Study.objects.filter(pk=study.pk).update(received_at=now - timedelta(hours=hours_ago))
        studies[study.public_id] = name.split("^")[0]
    client = login(cast.technologist)

    def order(sort=None):
        params = {"sort": sort} if sort else {}
        return [studies[r.public_id] for r in client.get(reverse("study_list"), params).context["rows"]]

    assert order() == ["Adams", "Brooks", "Chen"]  # newest study date first by default
    assert order("date") == ["Chen", "Brooks", "Adams"]
    assert order("-received") == ["Brooks", "Chen", "Adams"]
    assert order("received") == ["Adams", "Chen", "Brooks"]
    assert order("patient") == ["Adams", "Brooks", "Chen"]
    assert order("-patient") == ["Chen", "Brooks", "Adams"]


def test_list_pages_by_fifty(cast, login):
    make_rows(cast.center, 51)
    client = login(cast.technologist)
    first = client.get(reverse("study_list"))
    assert len(first.context["rows"]) == 50
    assert "Page 1 of 2 · 51 studies" in page_text(first)
    assert len(client.get(reverse("study_list"), {"page": 2}).context["rows"]) == 1


def test_list_query_count_does_not_grow_with_studies(cast, login, django_assert_max_num_queries):
    make_rows(cast.center, 5)
    rad_study = Study.objects.filter(organization=cast.center).first()
    grant(cast, rad_study, "preview")
    for user in (cast.technologist, cast.radiologist):
        client = login(user)
        client.get(reverse("study_list"))  # warm the session
        with django_assert_max_num_queries(15):
            client.get(reverse("study_list"))
    make_rows(cast.center, 35)
    for study in Study.objects.filter(organization=cast.center).exclude(pk=rad_study.pk)[:9]:
        grant(cast, study, "preview")
    for user, rows in ((cast.technologist, 40), (cast.radiologist, 10)):
        client = login(user)
        client.get(reverse("study_list"))  # warm the session
        params = {"q": "Patient", "sort": "patient"} if user == cast.technologist else {}
        with django_assert_max_num_queries(15):
            response = client.get(reverse("study_list"), params)
        assert len(response.context["rows"]) == rows


def test_viewing_the_list_is_audited_with_the_studies_shown(cast, login, ct_study):
    login(cast.technologist).get(reverse("study_list"), {"modality": "CT"})
    event = AuditEvent.objects.get(action="study.list_viewed")
    assert event.actor == cast.technologist
    assert event.extra["studies"] == [ct_study.study_instance_uid]
    assert event.extra["filters"] == {"modality": "CT"}


# --- preview (de-identified) and full grants --------------------------------------------------------

def test_preview_grant_shows_a_de_identified_row_and_page_without_any_phi(cast, login, canary_study):
    grant(cast, canary_study, "preview")
    client = login(cast.radiologist)
    listing = client.get(reverse("study_list"))
    assert [r.level for r in listing.context["rows"]] == ["preview"]
    row = listing.context["rows"][0]
    assert (row.patient_name, row.patient_id, row.accession_number, row.study_description, row.study_date,
            row.patient_birth_date, row.institution_name) == ("", "", "", "", None, None, "")
    detail = client.get(reverse("study_detail", args=[canary_study.public_id]))
    assert detail.status_code == 200
    for response in (listing, detail):
        text = page_text(response)
        assert CANARY not in text
        assert "De-identified study" in text
        assert not re.search(r"(?<![0-9.])1954(?![0-9])", text)  # the birth year, not digits inside a UID
        assert "MRN" not in text
    assert "CT" in page_text(detail)
    assert "US-TX" in page_text(detail)


def test_a_preview_grant_cannot_find_patient_data_by_searching_filtering_or_sorting(cast, login, canary_study):
    grant(cast, canary_study, "preview")
    client = login(cast.radiologist)
    assert client.get(reverse("study_list"), {"q": CANARY}).context["rows"] == []
    assert client.get(reverse("study_list"), {"q": "MRN100203"}).context["rows"] == []
    assert client.get(reverse("study_list"), {"date_from": "2000-01-01"}).context["rows"] == []
    assert client.get(reverse("study_list"), {"modality": "CT"}).context["rows"] != []  # safe fields still work


def test_full_grant_shows_the_patient(cast, login, canary_study):
    grant(cast, canary_study, "full")
    client = login(cast.radiologist)
    assert [r.level for r in client.get(reverse("study_list")).context["rows"]] == ["full"]
    assert CANARY in page_text(client.get(reverse("study_detail", args=[canary_study.public_id])))
    assert client.get(reverse("study_list"), {"q": CANARY}).context["rows"] != []


def test_an_expired_or_revoked_grant_is_404(cast, login, ct_study):
    g = grant(cast, ct_study, "full")
    client = login(cast.radiologist)
    assert client.get(reverse("study_detail", args=[ct_study.public_id])).status_code == 200
    StudyAccessGrant.objects.filter(pk=g.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("study_detail", args=[ct_study.public_id])).status_code == 404
    assert client.get(reverse("study_list")).context["rows"] == []


def test_viewing_a_study_page_is_an_audited_access_at_the_actors_level(cast, login, ct_study):
    login(cast.technologist).get(reverse("study_detail", args=[ct_study.public_id]))
    grant(cast, ct_study, "preview")
    login(cast.radiologist).get(reverse("study_detail", args=[ct_study.public_id]))
    events = AuditEvent.objects.filter(action="study.accessed", object_id=ct_study.study_instance_uid).order_by("id")
    assert [(e.actor, e.extra["level"], e.extra["fetched"]) for e in events] == [
        (cast.technologist, "full", "study_page"), (cast.radiologist, "preview", "study_page")]
    assert all(e.organization == cast.center for e in events)


# --- the study page ----------------------------------------------------------------------------------

def test_study_page_lists_series_with_thumbnails_counts_and_sizes(cast, login):
    study = ingest(cast.center, synthetic.mr_study(spec(1, description="MR BRAIN"), slices=2, size=16))
    response = login(cast.technologist).get(reverse("study_detail", args=[study.public_id]))
    text = page_text(response)
    series = list(Series.objects.filter(study=study).order_by("series_number"))
    assert [s.series_description for s in response.context["series"]] == ["AX T1", "AX T2 FLAIR", "SAG T1"]
    for s in series:
        url = reverse("dicomweb_series_thumbnail", args=[study.study_instance_uid, s.series_instance_uid])
        assert f'src="{url}"' in text
    assert [r.number_of_instances for r in response.context["series"]] == [2, 2, 2]
    assert "3 series · 6 images" in text
    assert "Nguyen, Minh" in text
    assert "MR BRAIN" in text
    assert "/static/js/studies.js" in text  # the placeholder for a thumbnail that fails to load


def test_a_preview_shows_no_thumbnail_for_burned_in_annotation(cast, login):
    study = ingest(cast.center, synthetic.ultrasound(spec(4), frames=1))
    grant(cast, study, "preview")
    text = page_text(login(cast.radiologist).get(reverse("study_detail", args=[study.public_id])))
    assert "thumbnail" not in re.sub(r"<script.*?</script>", "", text)  # no thumbnail URL at all
    assert "Burned-in annotation: not shown in a preview" in text
    full = page_text(login(cast.technologist).get(reverse("study_detail", args=[study.public_id])))
    assert "/thumbnail" in full
    assert "burned-in text" in full


def test_only_a_declared_burned_in_annotation_is_labelled_burned_in_text(cast, login):
    """A series that does not declare Burned In Annotation is labelled as undeclared, not as burned-in text,
    and a preview still shows no thumbnail of it (only "NO" is safe)."""
    undeclared = synthetic.ct_series(spec(5), slices=2, size=32)
    for ds in undeclared:
        del ds.BurnedInAnnotation
    study = ingest(cast.center, undeclared)
    grant(cast, study, "preview")
    full = page_text(login(cast.technologist).get(reverse("study_detail", args=[study.public_id])))
    assert "burned-in annotation not declared" in full
    assert "burned-in text" not in full
    preview = page_text(login(cast.radiologist).get(reverse("study_detail", args=[study.public_id])))
    assert "/thumbnail" not in re.sub(r"<script.*?</script>", "", preview)
    assert "Burned In Annotation not declared NO: not shown in a preview" in preview
    declared_no = page_text(login(cast.technologist).get(
        reverse("study_detail", args=[ingest(cast.center, synthetic.ct_series(spec(6), slices=2, size=32)).public_id])))
    assert "burned-in" not in declared_no


def test_audit_trail_and_admin_forms_are_for_admins_only(cast, login, ct_study):
    admin_page = page_text(login(cast.center_admin).get(reverse("study_detail", args=[ct_study.public_id])))
    assert "Audit trail" in admin_page
    assert "study.ingested" in admin_page
    assert "Save jurisdiction" in admin_page
    assert "Delete study" in admin_page
    for principal in ("technologist", "center_viewer"):
        page = page_text(login(cast.users[principal]).get(reverse("study_detail", args=[ct_study.public_id])))
        assert "Audit trail" not in page
        assert "study.ingested" not in page
        assert "Save jurisdiction" not in page
        assert "Delete study" not in page


# --- jurisdiction -----------------------------------------------------------------------------------

def test_admin_changes_the_jurisdiction_and_it_is_audited(cast, login, ct_study):
    response = login(cast.center_admin).post(reverse("study_jurisdiction", args=[ct_study.public_id]),
                                             {"country": "us", "region": "ok"})
    assert response.status_code == 302
    ct_study.refresh_from_db()
    assert ct_study.jurisdiction == "US-OK"
    event = AuditEvent.objects.get(action="study.jurisdiction_changed")
    assert (event.actor, event.object_id, event.organization) == (cast.center_admin, ct_study.study_instance_uid,
                                                                  cast.center)
    assert event.extra == {"from": "US-TX", "to": "US-OK"}


@pytest.mark.parametrize(("country", "region", "field", "message"), [
    ("USA", "TX", "country", "at most 2 characters"),
    ("U1", "TX", "country", "two-letter country code"),
    ("US", "Texas", "region", "at most 3 characters"),
    ("US", "T-X", "region", "state or province code"),
    ("US", "", "region", "issued per state or province"),
])
def test_jurisdiction_is_validated(cast, login, ct_study, country, region, field, message):
    response = login(cast.center_admin).post(reverse("study_jurisdiction", args=[ct_study.public_id]),
                                             {"country": country, "region": region})
    assert response.status_code == 400
    assert message in " ".join(response.context["jurisdiction_form"].errors[field])
    ct_study.refresh_from_db()
    assert ct_study.jurisdiction == "US-TX"
    assert not AuditEvent.objects.filter(action="study.jurisdiction_changed").exists()


def test_a_country_without_regions_may_leave_the_region_empty(cast, ct_study):
    services.study_update_jurisdiction(actor=actor(cast.center_admin), study=ct_study, country="DE", region="")
    ct_study.refresh_from_db()
    assert ct_study.jurisdiction == "DE"


@pytest.mark.parametrize("principal", ["technologist", "center_viewer", "radiologist", "other_admin"])
def test_only_the_centers_admin_changes_the_jurisdiction(cast, login, ct_study, principal):
    grant(cast, ct_study, "full")
    response = login(cast.users[principal]).post(reverse("study_jurisdiction", args=[ct_study.public_id]),
                                                 {"country": "US", "region": "OK"})
    assert response.status_code == 404
    ct_study.refresh_from_db()
    assert ct_study.jurisdiction == "US-TX"


def test_the_service_refuses_a_member_who_is_not_admin(cast, ct_study):
    from core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.study_update_jurisdiction(actor=actor(cast.technologist), study=ct_study, country="US", region="OK")


# --- soft delete, restore, purge ----------------------------------------------------------------------

def test_admin_deletes_a_study_with_a_reason_and_it_disappears_but_stays_restorable(cast, login, ct_study, settings):
    settings.STUDY_RETENTION_DAYS = 30
    admin = login(cast.center_admin)
    assert admin.get(reverse("study_delete", args=[ct_study.public_id])).status_code == 200
    response = admin.post(reverse("study_delete", args=[ct_study.public_id]), {"reason": "sent to the wrong center"})
    assert response.status_code == 302
    ct_study.refresh_from_db()
    assert ct_study.deleted_at is not None
    assert ct_study.deleted_by == cast.center_admin
    event = AuditEvent.objects.get(action="study.deleted")
    assert (event.reason, event.object_id) == ("sent to the wrong center", ct_study.study_instance_uid)
    # Gone for everyone else, files kept.
    tech = login(cast.technologist)
    assert tech.get(reverse("study_list")).context["rows"] == []
    assert tech.get(reverse("study_detail", args=[ct_study.public_id])).status_code == 404
    assert all(default_storage.exists(i.storage_key) for i in Instance.objects.filter(study=ct_study))
    # The admin finds it among the deleted studies and restores it.
    deleted = admin.get(reverse("study_list"), {"deleted": "1"})
    assert [r.public_id for r in deleted.context["rows"]] == [ct_study.public_id]
    page = page_text(admin.get(reverse("study_detail", args=[ct_study.public_id])))
    assert "This study is deleted." in page
    assert "Restore study" in page
    assert admin.post(reverse("study_restore", args=[ct_study.public_id])).status_code == 302
    ct_study.refresh_from_db()
    assert ct_study.deleted_at is None
    assert AuditEvent.objects.filter(action="study.restored", object_id=ct_study.study_instance_uid).exists()
    assert [r.public_id for r in tech.get(reverse("study_list")).context["rows"]] == [ct_study.public_id]


def test_delete_needs_a_reason(cast, login, ct_study):
    response = login(cast.center_admin).post(reverse("study_delete", args=[ct_study.public_id]), {"reason": "  "})
    assert response.status_code == 400
    ct_study.refresh_from_db()
    assert ct_study.deleted_at is None


@pytest.mark.parametrize("principal", ["technologist", "center_viewer", "radiologist", "other_admin"])
def test_only_the_centers_admin_deletes_or_restores(cast, login, ct_study, principal):
    grant(cast, ct_study, "full")
    client = login(cast.users[principal])
    assert client.get(reverse("study_delete", args=[ct_study.public_id])).status_code == 404
    assert client.post(reverse("study_delete", args=[ct_study.public_id]), {"reason": "x"}).status_code == 404
    ct_study.refresh_from_db()
    assert ct_study.deleted_at is None
    services.study_soft_delete(actor=actor(cast.center_admin), study=ct_study, reason="duplicate")
    assert client.post(reverse("study_restore", args=[ct_study.public_id])).status_code == 404
    ct_study.refresh_from_db()
    assert ct_study.deleted_at is not None


def test_restore_is_refused_after_the_retention_window(cast, login, ct_study, settings):
    settings.STUDY_RETENTION_DAYS = 30
    services.study_soft_delete(actor=actor(cast.center_admin), study=ct_study, reason="duplicate")
    Study.objects.filter(pk=ct_study.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    client = login(cast.center_admin)
    assert "can no longer be restored" in page_text(client.get(reverse("study_detail", args=[ct_study.public_id])))
    client.post(reverse("study_restore", args=[ct_study.public_id]))
    ct_study.refresh_from_db()
    assert ct_study.deleted_at is not None


def test_purge_removes_files_and_rows_of_studies_deleted_longer_than_the_window_only(cast, settings):
    settings.STUDY_RETENTION_DAYS = 30
    old = ingest(cast.center, synthetic.ct_series(spec(0), slices=2, size=16))
    recent = ingest(cast.center, synthetic.ct_series(spec(1), slices=2, size=16))
    kept = ingest(cast.center, synthetic.ct_series(spec(2), slices=2, size=16))
    admin = actor(cast.center_admin)
    for study in (old, recent):
        services.study_soft_delete(actor=admin, study=study, reason="test")
    Study.objects.filter(pk=old.pk).update(deleted_at=timezone.now() - timedelta(days=30, minutes=1))
    old_keys = list(Instance.objects.filter(study=old).values_list("storage_key", flat=True))
    # Sizes as stored (regenerating the series would make new UIDs, whose lengths vary).
    old_bytes = sum(Instance.objects.filter(study=old).values_list("size", flat=True))
    grant(cast, old, "full")

    result = purge_deleted_studies.delay().get()

    assert result == {"studies": 1, "instances": 2, "files": 2, "bytes": old_bytes, "failed": []}
    assert not Study.objects.filter(pk=old.pk).exists()
    assert not Instance.objects.filter(storage_key__in=old_keys).exists()
    assert not StudyAccessGrant.objects.filter(study_id=old.pk).exists()
    assert not any(default_storage.exists(key) for key in old_keys)
    for study in (recent, kept):
        assert Study.objects.filter(pk=study.pk).exists()
        assert all(default_storage.exists(i.storage_key) for i in Instance.objects.filter(study=study))
    event = AuditEvent.objects.get(action="study.purged")
    assert (event.object_id, event.organization, event.extra["instances"]) == (old.study_instance_uid, cast.center, 2)
    # Idempotent: a second run finds nothing to do.
    assert services.study_purge_expired().studies == 0


def test_purge_skips_a_study_restored_meanwhile(cast, settings):
    settings.STUDY_RETENTION_DAYS = 0
    study = ingest(cast.center, synthetic.ct_series(spec(0), slices=1, size=16))
    services.study_soft_delete(actor=actor(cast.center_admin), study=study, reason="test")
    Study.objects.filter(pk=study.pk).update(deleted_at=None)  # restored between listing and purging
    assert services.study_purge_expired(now=timezone.now() + timedelta(days=1)).studies == 0
    assert Study.objects.filter(pk=study.pk).exists()


# --- the pages carry no inline script or style ----------------------------------------------------------

def test_study_pages_have_no_inline_script_or_style(cast, login, ct_study):
    client = login(cast.center_admin)
    urls = [reverse("study_list"), reverse("study_list") + "?deleted=1", reverse("study_upload"),
            reverse("study_detail", args=[ct_study.public_id]), reverse("study_delete", args=[ct_study.public_id])]
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        html = page_text(response)
        assert not inline_script.search(html), url
        assert " style=" not in html, url
        assert "<style" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url  # no inline event handlers (onerror=...)


def test_the_purge_task_drains_a_backlog_in_batches(cast, settings):
    settings.STUDY_RETENTION_DAYS = 1
    make_rows(cast.center, 5, deleted_at=timezone.now() - timedelta(days=2))
    first_batch = purge_deleted_studies.delay(limit=2).get()  # eager: the follow-up batches run at once
    assert first_batch["studies"] == 2
    assert not Study.objects.filter(organization=cast.center).exists()
    assert AuditEvent.objects.filter(action="study.purged").count() == 5
