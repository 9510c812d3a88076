"""The Stripe webhook endpoint: authenticated by its signature, not by a session (hence no CSRF token)."""

from __future__ import annotations

import stripe
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import stripe_client
from billing.services import webhooks
from billing.tasks import process_stripe_event


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Verify ``Stripe-Signature`` over the raw body, store the event once, process it after commit.

    A bad, missing or stale signature (or a body that is no event) is 400 and changes nothing; a replay
    of a stored event is 200 and changes nothing either.
    """
    try:
        event = stripe_client.construct_event(request.body, request.headers.get("Stripe-Signature"))
    except stripe.SignatureVerificationError as error:
        return JsonResponse({"error": {"code": "bad_signature", "message": str(error),
                                       "fields": {"Stripe-Signature": [str(error)]}}}, status=400)
    except ValueError:
        return JsonResponse({"error": {"code": "invalid_payload", "message": "The body is not a Stripe event.",
                                       "fields": {"body": ["Not a JSON event."]}}}, status=400)
    if not event.to_dict().get("id") or not event.to_dict().get("type"):
        return JsonResponse({"error": {"code": "invalid_payload", "message": "The event has no id or type.",
                                       "fields": {"body": ["An event needs an id and a type."]}}}, status=400)
    with transaction.atomic():
        stored, created = webhooks.event_receive(event)
        if created:
            # robust: a broker that is down must not turn a stored event into a 500 (and a redelivery that
            # would find it stored); the hourly run finishes events left open (billing.tasks.run_transfers).
            transaction.on_commit(lambda: process_stripe_event.delay(stored.pk), robust=True)
    return JsonResponse({"received": True, "duplicate": not created})
