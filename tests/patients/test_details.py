"""Your details (/my/details/): the patient's date of birth and residence, errors by field, their space opened
on the first save; patients without details are sent there before bringing images; nobody else has the page."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from accounts.models import AuditEvent, Organization, PatientProfile

URL = "/my/details/"


def test_a_patient_gives_details_and_their_personal_space_opens_in_their_residence(cast, login):
    client = login(cast.patient)
    assert client.get(URL).status_code == 200
    response = client.post(URL, {"date_of_birth": "1979-04-02", "country": "us", "region": "nm"})
    assert response.status_code == 302
    assert response["Location"] == "/my/images/"
    profile = PatientProfile.objects.get(user=cast.patient)
    assert (profile.date_of_birth, profile.jurisdiction) == (date(1979, 4, 2), "US-NM")
    assert (profile.space.kind, profile.space.jurisdiction) == (Organization.Kind.PATIENT, "US-NM")
    assert AuditEvent.objects.filter(action="patient.details_recorded", actor=cast.patient).count() == 1
    # Moving house later changes the details, not the space.
    client.post(URL, {"date_of_birth": "1979-04-02", "country": "CA", "region": "ON"})
    profile.refresh_from_db()
    assert profile.jurisdiction == "CA-ON"
    assert Organization.objects.filter(kind=Organization.Kind.PATIENT).count() == 1


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"date_of_birth": "", "country": "US", "region": "TX"}, "date_of_birth", "Enter your date of birth."),
    ({"date_of_birth": "02/04/1979", "country": "US", "region": "TX"}, "date_of_birth", "YYYY-MM-DD"),
    ({"date_of_birth": (date.today() + timedelta(days=2)).isoformat(), "country": "US", "region": "TX"},
     "date_of_birth", "cannot be in the future"),
    ({"date_of_birth": "1979-04-02", "country": "USA", "region": "TX"}, "country", "at most 2 characters"),
    ({"date_of_birth": "1979-04-02", "country": "U1", "region": "TX"}, "country", "two-letter country code"),
    ({"date_of_birth": "1979-04-02", "country": "US", "region": ""}, "region", "issued per state or province"),
])
def test_bad_details_are_refused_on_their_field_and_nothing_is_written(cast, login, data, field, message):
    response = login(cast.patient).post(URL, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert not PatientProfile.objects.exists()
    assert not Organization.objects.filter(kind=Organization.Kind.PATIENT).exists()


@pytest.mark.parametrize("path", ["/my/images/upload/", "/my/images/shares/new/"])
def test_a_patient_without_details_is_sent_to_give_them_first_and_told_why(cast, login, path):
    client = login(cast.patient)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?next={path}"
    page = client.get(response["Location"])
    assert "residence decides which licenses" in page.content.decode()
    saved = client.post(URL, {"date_of_birth": "1979-04-02", "country": "DE", "region": "", "next": path})
    assert saved["Location"] == path
    assert client.get(path).status_code == 200


def test_the_next_address_cannot_lead_off_site(cast, login):
    response = login(cast.patient).post(URL, {"date_of_birth": "1979-04-02", "country": "DE",
                                              "next": "https://evil.example/"})
    assert response["Location"] == "/my/images/"


@pytest.mark.parametrize("principal", ["center_admin", "technologist", "radiologist", "platform_staff"])
def test_professionals_have_no_patient_details_page(cast, login, principal):
    client = login(cast.users[principal])
    assert client.get(URL).status_code == 404
    assert client.post(URL, {"date_of_birth": "1979-04-02", "country": "DE"}).status_code == 404
    assert not PatientProfile.objects.exists()
