"""A radiologist's own macros: listed, added, edited and deleted by their owner only; anyone else's is 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.errors import ApplicationError, NotFound
from reporting import selectors
from reporting.models import Macro
from reporting.services import macros
from tests.marketplace.helpers import actor, make_radiologist

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(cast):
    return make_radiologist(user=cast.radiologist)


@pytest.fixture
def other_macro(db):
    other = make_radiologist(name="Other Reader")
    return Macro.objects.create(radiologist=other, name="nml", text="Someone else's normal text.")


def test_a_radiologist_adds_edits_and_deletes_their_macros(cast, reader):
    me = actor(cast.radiologist)
    macro = macros.macro_create(actor=me, name=" .NML ", text="No acute abnormality.\r\n")
    assert (macro.radiologist, macro.name, macro.text) == (reader, "nml", "No acute abnormality.")
    macros.macro_update(actor=me, macro=macro, name="normal", text="Normal study.")
    macro.refresh_from_db()
    assert (macro.name, macro.text) == ("normal", "Normal study.")
    assert list(selectors.macros_of(me)) == [macro]
    macros.macro_delete(actor=me, macro=macro)
    assert not Macro.objects.filter(pk=macro.pk).exists()


@pytest.mark.parametrize(("name", "text", "field"), [
    ("", "x", "name"),
    ("has space", "x", "name"),
    ("a" * 31, "x", "name"),
    ("ok", "   ", "text"),
    ("ok", "x" * 4001, "text"),
    ("ok", "nul\x00", "text"),
])
def test_bad_macros_are_refused_naming_the_field(cast, reader, name, text, field):
    with pytest.raises(ApplicationError) as refused:
        macros.macro_create(actor=actor(cast.radiologist), name=name, text=text)
    assert field in refused.value.fields
    assert not Macro.objects.filter(radiologist=reader).exists()


def test_a_name_is_used_once_per_radiologist(cast, reader, other_macro):
    me = actor(cast.radiologist)
    macros.macro_create(actor=me, name="nml", text="Mine.")  # the other reader's .nml does not clash
    with pytest.raises(ApplicationError) as refused:
        macros.macro_create(actor=me, name="NML", text="Again.")
    assert "name" in refused.value.fields
    second = macros.macro_create(actor=me, name="ptx", text="No pneumothorax.")
    with pytest.raises(ApplicationError) as refused:
        macros.macro_update(actor=me, macro=second, name="nml", text="x")
    assert "name" in refused.value.fields


def test_another_radiologists_macro_is_not_found(cast, reader, other_macro):
    me = actor(cast.radiologist)
    with pytest.raises(NotFound):
        macros.macro_for_owner(actor=me, public_id=other_macro.public_id)
    with pytest.raises(NotFound):
        macros.macro_update(actor=me, macro=other_macro, name="mine", text="Taken over.")
    with pytest.raises(NotFound):
        macros.macro_delete(actor=me, macro=other_macro)
    other_macro.refresh_from_db()
    assert (other_macro.name, other_macro.text) == ("nml", "Someone else's normal text.")


def test_someone_without_a_radiologist_profile_has_no_macros(cast):
    with pytest.raises(NotFound):
        macros.macro_create(actor=actor(cast.center_admin), name="nml", text="x")


# --- pages ------------------------------------------------------------------------------------------

def test_the_macro_pages(cast, reader, login, other_macro):
    client = login(cast.radiologist)
    assert client.get(reverse("macro_list")).status_code == 200
    response = client.post(reverse("macro_list"), {"name": "nml", "text": "No acute abnormality."})
    assert response.status_code == 302
    macro = Macro.objects.get(radiologist=reader)
    page = client.get(reverse("macro_list")).content.decode()
    assert ".nml" in page
    assert "No acute abnormality." in page
    assert "Someone else" not in page

    assert client.get(reverse("macro_edit", args=[macro.public_id])).status_code == 200
    response = client.post(reverse("macro_edit", args=[macro.public_id]), {"name": "nml", "text": "Changed."})
    assert response.status_code == 302
    macro.refresh_from_db()
    assert macro.text == "Changed."

    assert client.post(reverse("macro_delete", args=[macro.public_id])).status_code == 302
    assert not Macro.objects.filter(pk=macro.pk).exists()


def test_a_refused_macro_is_shown_on_its_field(cast, reader, login):
    client = login(cast.radiologist)
    client.post(reverse("macro_list"), {"name": "nml", "text": "One."})
    response = client.post(reverse("macro_list"), {"name": "nml", "text": "Two."})
    assert response.status_code == 400
    assert "You already have a macro named .nml." in response.content.decode()
    response = client.post(reverse("macro_list"), {"name": "bad name", "text": "Two."})
    assert response.status_code == 400
    assert "lower-case letters" in response.content.decode()
    assert Macro.objects.filter(radiologist=reader).count() == 1


def test_another_radiologists_macro_is_404_on_every_page(cast, reader, login, other_macro):
    client = login(cast.radiologist)
    assert client.get(reverse("macro_edit", args=[other_macro.public_id])).status_code == 404
    assert client.post(reverse("macro_edit", args=[other_macro.public_id]),
                       {"name": "mine", "text": "x"}).status_code == 404
    assert client.post(reverse("macro_delete", args=[other_macro.public_id])).status_code == 404
    other_macro.refresh_from_db()
    assert other_macro.name == "nml"


@pytest.mark.parametrize("user", ["center_admin", "technologist", "platform_staff", "patient"])
def test_people_without_a_radiologist_profile_get_404(cast, login, user, other_macro):
    client = login(getattr(cast, user))
    assert client.get(reverse("macro_list")).status_code == 404
    assert client.post(reverse("macro_list"), {"name": "nml", "text": "x"}).status_code == 404
    assert client.get(reverse("macro_edit", args=[other_macro.public_id])).status_code == 404


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(reverse("macro_list")).status_code == 302
