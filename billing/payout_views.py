"""Payout pages: what is owed to whom (and its CSV), recording a payment made by hand, each Stripe payout
traced to the reads behind it, and a radiologist's or group's onboarding to Stripe Connect.

Thin: one service or selector call each; platform finance only, except onboarding (the payee's own).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Organization, RadiologistProfile
from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from billing import policy, stripe_client
from billing.models import ManualPayout, StripePayout, Transfer
from billing.services import connect, payouts, reconcile
from core.errors import NotFound
from core.links import absolute_url


def _finance(actor) -> None:
    if not policy.is_platform_finance(actor):
        raise NotFound()


def _payee(kind: str, public_id: str) -> connect.Payee:
    if kind == "radiologist":
        profile = RadiologistProfile.objects.select_related("user").filter(public_id=public_id).first()
        if profile is not None:
            return connect.Payee(radiologist=profile)
    elif kind == "group":
        group = Organization.objects.filter(public_id=public_id, kind=Organization.Kind.RADIOLOGY_GROUP).first()
        if group is not None:
            return connect.Payee(organization=group)
    raise NotFound()


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def payout_list(request):
    """What is owed per payee up to now (CSV to pay from), payments by hand, and Stripe's payouts."""
    actor = actor_of(request)
    _finance(actor)
    if request.method == "POST":
        try:
            as_of = datetime.fromisoformat(request.POST.get("as_of", ""))
            amount_cents = int(request.POST.get("amount_cents", ""))
        except ValueError:
            messages.error(request, "The payment's amount or export time is not readable: start from the list.")
            return redirect("payout_list")
        if as_of.tzinfo is None:  # the form carries the export's time in UTC
            as_of = as_of.replace(tzinfo=UTC)
        with rule_refusals(message_refusal(request)) as call:
            paid = payouts.payout_mark_paid(
                actor=actor, payee=_payee(request.POST.get("payee_type", ""), request.POST.get("payee_id", "")),
                currency=request.POST.get("currency", ""), amount_cents=amount_cents,
                reference=request.POST.get("reference", ""), as_of=as_of, request=request)
        if call.ok:
            messages.success(request, f"Payment {paid.reference} recorded: {paid.amount_cents} {paid.currency}.")
        return redirect("payout_list")
    as_of = timezone.now()
    if request.GET.get("format") == "csv":
        response = HttpResponse(payouts.payouts_owed_csv(actor=actor, as_of=as_of), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="payouts-owed-{as_of:%Y%m%d-%H%M}.csv"'
        return response
    return render(request, "billing/payout_list.html", {
        "owed": payouts.payouts_owed(actor=actor, as_of=as_of), "as_of": as_of,
        "stripe_on": stripe_client.enabled(),
        "stripe_payouts": StripePayout.objects.select_related("connected_account__radiologist__user",
                                                              "connected_account__organization")
        .order_by("-stripe_created")[:100],
        "manual_payouts": ManualPayout.objects.select_related("radiologist__user", "organization", "paid_by")
        .order_by("-created_at")[:100]})


def _trace_csv(name: str, rows: list[list]) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["transfer", "balance_transaction", "amount_cents", "read_request", "ledger_key", "issue"])
    writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def payout_detail(request, public_id):
    """One Stripe payout: each balance transaction matched to our transfer, its ledger posting and its read;
    every difference listed with its reason. POST reconciles it again against Stripe."""
    actor = actor_of(request)
    _finance(actor)
    payout = StripePayout.objects.select_related("connected_account").filter(public_id=public_id).first()
    if payout is None:
        raise NotFound()
    if request.method == "POST":
        with rule_refusals(message_refusal(request)) as call:
            reconcile.payout_reconcile(payout=payout)
        if call.ok:
            messages.success(request, "Reconciled against Stripe's balance transactions.")
        return redirect("payout_detail", public_id=payout.public_id)
    report = payout.reconciliation or {}
    if request.GET.get("format") == "csv":
        rows = [[m["transfer"], m["balance_transaction"], m["amount_cents"], m["read_request"], m["ledger_key"], ""]
                for m in report.get("matched", [])]
        rows += [[i["transfer"], i["balance_transaction"], i["stripe_cents"], i["read_request"], "",
                  f"{i['reason']}: {i['message']}"] for i in report.get("issues", [])]
        return _trace_csv(f"payout-{payout.stripe_payout_id}", rows)
    return render(request, "billing/payout_detail.html", {"payout": payout, "report": report,
                                                          "stripe_on": stripe_client.enabled()})


@login_required
@require_http_methods(["GET"])
@page_errors
def manual_payout_detail(request, public_id):
    """A payment made by hand: the earnings it paid, each with its read."""
    actor = actor_of(request)
    _finance(actor)
    payout = ManualPayout.objects.select_related("radiologist__user", "organization").filter(
        public_id=public_id).first()
    if payout is None:
        raise NotFound()
    transfers = Transfer.objects.filter(manual_payout=payout).select_related("earning").order_by("id")
    if request.GET.get("format") == "csv":
        return _trace_csv(f"manual-payout-{payout.public_id}", [
            ["", "", t.amount_cents, t.reference, t.earning.natural_key, ""] for t in transfers])
    return render(request, "billing/manual_payout_detail.html", {"payout": payout, "transfers": transfers})


@login_required
@require_POST
@page_errors
def payout_onboarding(request):
    """A radiologist (or, with ``group``, a group's money people) goes to Stripe to set up payouts."""
    actor = actor_of(request)
    if request.POST.get("group"):
        group = Organization.objects.filter(slug=request.POST["group"], kind=Organization.Kind.RADIOLOGY_GROUP).first()
        payee = connect.Payee(organization=group) if group else None
    else:
        profile = RadiologistProfile.objects.filter(user=request.user).first()
        payee = connect.Payee(radiologist=profile) if profile else None
    if payee is None or not connect.can_manage(actor, payee):
        raise NotFound()
    if not stripe_client.enabled():
        messages.info(request, "Payouts are made by bank transfer by ReadRoom's finance team for now.")
        return redirect("earnings")
    back = absolute_url(reverse("earnings"))
    with rule_refusals(message_refusal(request)) as call:
        url = connect.account_link_create(actor=actor, payee=payee, return_url=back, refresh_url=back)
    return redirect(url) if call.ok else redirect("earnings")
