"""/favicon.ico, which browsers ask for on their own: the product's icon, for everyone, never a 404."""

from django.contrib.staticfiles import finders
from django.test import Client


def test_favicon_ico_redirects_anyone_to_the_static_svg_icon(db):
    response = Client().get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].startswith("/static/img/favicon")
    assert response["Location"].endswith(".svg")
    assert finders.find("img/favicon.svg") is not None  # the file the redirect names exists
