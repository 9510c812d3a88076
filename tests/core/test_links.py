"""core.links.absolute_url: links in emails follow the site that serves the request, else SITE_URL."""

from __future__ import annotations

from django.test import RequestFactory

from core.links import absolute_url


def test_within_a_request_the_link_follows_the_host_and_port_serving_it(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    request = RequestFactory().get("/", HTTP_HOST="127.0.0.1:8101")
    assert absolute_url("/invitations/abc/", request) == "http://127.0.0.1:8101/invitations/abc/"


def test_a_secure_request_keeps_https(settings):
    settings.ALLOWED_HOSTS = ["readroom.example"]
    request = RequestFactory().get("/", HTTP_HOST="readroom.example", secure=True)
    assert absolute_url("/worklist/", request) == "https://readroom.example/worklist/"


def test_without_a_request_the_link_is_built_on_site_url(settings):
    settings.SITE_URL = "https://readroom.example/"
    assert absolute_url("/worklist/") == "https://readroom.example/worklist/"


def test_an_absolute_link_is_left_alone(settings):
    settings.SITE_URL = "https://readroom.example"
    assert absolute_url("https://elsewhere.example/x") == "https://elsewhere.example/x"
