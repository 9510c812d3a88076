"""Billing's routes; access rules are in ``billing.policy.ROUTES``."""

from django.urls import path

from billing.webhook_views import stripe_webhook

urlpatterns = [
    path("stripe/webhook/", stripe_webhook, name="stripe_webhook"),
]
