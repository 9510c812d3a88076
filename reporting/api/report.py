"""Reporting API (being written)."""

urlpatterns: list = []
