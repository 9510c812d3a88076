"""The request's message thread: who reads and who writes (the center by role, the assignee; operations read
only; anyone else 404), the body's limits, escaping, audit, the other side told, and the htmx fragment."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Notification
from core.errors import ApplicationError, NotFound, PermissionDenied
from reporting.models import Message
from reporting.services.messages import MAX_MESSAGE_CHARS, message_post
from tests.conftest import enroll_totp
from tests.marketplace.helpers import actor, make_radiologist
from tests.reporting.critical_helpers import sign_with_critical

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def rr(draft):
    """A read request in progress, assigned to the cast's radiologist."""
    return draft.read_request


@pytest.fixture
def other_reader():
    profile = make_radiologist(name="Dr Not Assigned")
    enroll_totp(profile.user)
    return profile.user


def _url(rr) -> str:
    return reverse("read_request_messages", args=[rr.public_id])


def _notices(user) -> int:
    return Notification.objects.filter(user=user, url__contains="/reads/").count()


# --- the service --------------------------------------------------------------------------------------

def test_the_center_asks_the_assignee_is_told_and_the_post_is_audited(cast, rr):
    before = _notices(cast.radiologist)
    message = message_post(actor=actor(cast.technologist), read_request=rr, body="  Is the left MCA dense?\r\n ")
    assert (message.body, message.from_center, message.author) == ("Is the left MCA dense?", True, cast.technologist)
    assert _notices(cast.radiologist) == before + 1
    notice = Notification.objects.filter(user=cast.radiologist).latest("id")
    assert notice.title == "Question from Lakeside Imaging"
    assert "MCA" not in notice.body  # the text stays in ReadRoom, out of emails
    audit = AuditEvent.objects.get(action="message.posted", object_id=str(message.public_id))
    assert (audit.actor, audit.organization_id, audit.object_type) == (cast.technologist, cast.center.pk,
                                                                       "reporting.message")
    assert audit.extra["read_request"] == str(rr.public_id)


def test_the_assignee_answers_and_the_centers_people_are_told(cast, rr):
    admin_before, tech_before = _notices(cast.center_admin), _notices(cast.technologist)
    message = message_post(actor=actor(cast.radiologist), read_request=rr, body="Yes, hyperdense MCA sign.")
    assert message.from_center is False
    assert (_notices(cast.center_admin), _notices(cast.technologist)) == (admin_before + 1, tech_before + 1)
    assert _notices(cast.radiologist) == 0


def test_a_viewer_writes_too_and_the_assignee_still_writes_after_reporting(cast, draft):
    message_post(actor=actor(cast.center_viewer), read_request=draft.read_request, body="Thanks.")
    sign_with_critical(cast, draft, category=3)
    rr = draft.read_request
    rr.refresh_from_db()
    assert rr.status == "reported"
    message_post(actor=actor(cast.radiologist), read_request=rr, body="Added a note on the nodule.")
    assert list(Message.objects.filter(read_request=rr).values_list("from_center", flat=True)) == [True, False]


@pytest.mark.parametrize(("principal", "refusal"), [
    ("platform_staff", PermissionDenied),  # reads the thread, never writes in it
    ("center_finance", NotFound),
    ("other_admin", NotFound),
    ("patient", NotFound),
])
def test_everyone_else_is_refused(cast, rr, principal, refusal):
    with pytest.raises(refusal):
        message_post(actor=actor(getattr(cast, principal)), read_request=rr, body="Hello")
    assert not Message.objects.exists()


def test_a_radiologist_not_assigned_gets_404(rr, other_reader):
    with pytest.raises(NotFound):
        message_post(actor=actor(other_reader), read_request=rr, body="Hello")


@pytest.mark.parametrize(("body", "code"), [
    ("", "required"), ("   \n ", "required"), ("a\x00b", "invalid"), ("x" * (MAX_MESSAGE_CHARS + 1), "too_long"),
    (None, "invalid"), (42, "invalid"),
])
def test_a_bad_body_is_refused_naming_the_field(cast, rr, body, code):
    with pytest.raises(ApplicationError) as refused:
        message_post(actor=actor(cast.technologist), read_request=rr, body=body)
    assert refused.value.code == code
    assert "body" in refused.value.fields
    assert not Message.objects.exists()
    assert not AuditEvent.objects.filter(action="message.posted").exists()


def test_the_longest_message_fits(cast, rr):
    assert len(message_post(actor=actor(cast.technologist), read_request=rr, body="x" * MAX_MESSAGE_CHARS).body) \
        == MAX_MESSAGE_CHARS


# --- the page fragment -------------------------------------------------------------------------------

@pytest.mark.parametrize(("principal", "status", "form"), [
    ("center_admin", 200, True), ("technologist", 200, True), ("center_viewer", 200, True),
    ("radiologist", 200, True), ("platform_staff", 200, False),
    ("center_finance", 404, False), ("other_admin", 404, False), ("patient", 404, False),
])
def test_who_reads_the_thread(cast, rr, login, principal, status, form):
    message_post(actor=actor(cast.technologist), read_request=rr, body="Is the left MCA dense?")
    response = login(getattr(cast, principal)).get(_url(rr), **HTMX)
    assert response.status_code == status
    if status == 200:
        body = response.content.decode()
        assert "Is the left MCA dense?" in body
        assert ('name="body"' in body) is form
        assert "<html" not in body  # htmx gets the fragment alone


def test_a_radiologist_not_assigned_and_anonymous_are_kept_out(rr, other_reader, login, client):
    assert login(other_reader).get(_url(rr)).status_code == 404
    assert login(other_reader).post(_url(rr), {"body": "Hi"}).status_code == 404
    assert client.get(_url(rr)).status_code == 302
    assert not Message.objects.exists()


def test_reading_the_thread_is_audited(cast, rr, login):
    login(cast.center_viewer).get(_url(rr), **HTMX)
    event = AuditEvent.objects.get(action="read_request.messages_viewed", actor=cast.center_viewer)
    assert event.object_id == str(rr.public_id)


def test_posting_with_htmx_returns_the_fragment_with_the_message(cast, rr, login):
    response = login(cast.technologist).post(_url(rr), {"body": "Is the left MCA dense?"}, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Is the left MCA dense?" in body
    assert f'id="messages-{rr.public_id}"' in body
    assert Message.objects.filter(read_request=rr, author=cast.technologist).count() == 1


def test_posting_without_htmx_goes_to_the_thread_page(cast, rr, login):
    client = login(cast.radiologist)
    response = client.post(_url(rr), {"body": "Hyperdense MCA sign, yes."})
    assert response.status_code == 302
    assert response["Location"] == _url(rr)
    page = client.get(_url(rr)).content.decode()
    assert "<html" in page
    assert "Hyperdense MCA sign, yes." in page


def test_a_bad_post_shows_the_error_and_stores_nothing(cast, rr, login):
    client = login(cast.technologist)
    response = client.post(_url(rr), {"body": "x" * (MAX_MESSAGE_CHARS + 1)})
    assert response.status_code == 400
    assert "at most 4,000 characters" in response.content.decode()
    htmx = client.post(_url(rr), {"body": "  "}, **HTMX)
    assert htmx.status_code == 200  # htmx swaps 2xx only: the fragment carries the error
    assert "Write a message." in htmx.content.decode()
    assert not Message.objects.exists()


@pytest.mark.parametrize(("principal", "status"), [("platform_staff", 403), ("center_finance", 404),
                                                   ("other_admin", 404)])
def test_posting_is_refused_to_operations_and_outsiders(cast, rr, login, principal, status):
    assert login(getattr(cast, principal)).post(_url(rr), {"body": "Hello"}, **HTMX).status_code == status
    assert not Message.objects.exists()


def test_html_in_a_message_is_escaped_and_line_breaks_kept(cast, rr, login):
    message_post(actor=actor(cast.technologist), read_request=rr,
                 body='<script>alert("x")</script>\n<img src=x onerror=alert(1)>')
    body = login(cast.radiologist).get(_url(rr), **HTMX).content.decode()
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br>&lt;img src=x onerror=alert(1)&gt;" in body


def test_message_times_are_in_the_readers_zone(cast, rr, login):
    message = message_post(actor=actor(cast.technologist), read_request=rr, body="Hello")
    cast.radiologist.time_zone = "Asia/Tokyo"
    cast.radiologist.save(update_fields=["time_zone"])
    body = login(cast.radiologist).get(_url(rr), **HTMX).content.decode()
    assert f"{message.created_at.astimezone(ZoneInfo('Asia/Tokyo')):%H:%M} JST" in body


def test_the_thread_of_a_missing_request_is_404(cast, login):
    assert login(cast.center_admin).get(reverse("read_request_messages", args=[
        "00000000-0000-4000-8000-000000000000"])).status_code == 404
