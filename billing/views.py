"""Finance pages: contracts, invoices, earnings statements and the finance dashboard.

Thin: the shape of the input in ``billing.forms``, one service or selector call, a template. Who may
see what is decided by ``billing.policy`` through the selectors and services (404 otherwise).
"""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.audit import audit_record
from accounts.models import Organization
from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from billing import policy, selectors, stripe_client
from billing.forms import ContractForm, GenerateInvoicesForm, ReasonForm, parse_month
from billing.invoice_documents import invoice_csv, invoice_pdf
from billing.services import connect, invoice_cards
from billing.services import contracts as contract_services
from billing.services import invoices as invoice_services
from core.charts import bar_chart
from core.errors import NotFound
from core.money import format_money


def _csv_response(filename: str, header: list[str], rows) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _act(request, actor, obj, actions: dict, action: str, *, noun: str, page: str):
    """Run one of a page's state actions (a reason or reference from the form), refusals as messages."""
    if action not in actions:
        raise NotFound()
    form = ReasonForm(request.POST)
    form.is_valid()
    with rule_refusals(message_refusal(request)) as call:
        actions[action](actor, obj, form, request)
    if call.ok:
        obj.refresh_from_db()
        messages.success(request, f"{noun} {obj.get_status_display().lower()}.")
    return redirect(page, public_id=obj.public_id)


# --- contracts ------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def contract_list(request):
    actor = actor_of(request)
    center = actor.active_organization
    return render(request, "billing/contract_list.html", {
        "contracts": selectors.contract_list(actor=actor).order_by("status", "-starts_on"),
        "can_draft": center is not None and policy.can_draft_for(actor, center)})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def contract_create(request):
    actor = actor_of(request)
    center = actor.active_organization
    if center is None or not policy.can_draft_for(actor, center):
        raise NotFound()
    form = ContractForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        terms = contract_services.ContractTerms(
            name=data["name"], starts_on=data["starts_on"], ends_on=data["ends_on"], group=data["group"],
            radiologist=data["radiologist"], fee_basis_points=int(data["fee_percent"] * 100),
            cancellation_fee_cents=data["cancellation_fee"], rates=data["rates"],
            service_levels=data["service_levels"])
        with rule_refusals(lambda exc: form.add_error(None, exc.message)) as call:
            contract = contract_services.contract_draft(actor=actor, center=center, terms=terms, request=request)
        if call.ok:
            messages.success(request, "Contract drafted. Propose it when the terms are right.")
            return redirect("contract_detail", public_id=contract.public_id)
    return render(request, "billing/contract_form.html", {"form": form, "center": center})


@login_required
@require_http_methods(["GET"])
@page_errors
def contract_detail(request, public_id):
    actor = actor_of(request)
    contract = selectors.contract_get(actor=actor, public_id=public_id)
    return render(request, "billing/contract_detail.html", {
        "contract": contract, "rates": contract.rates.order_by("modality", "priority", "band"),
        "service_levels": contract.service_levels.order_by("turnaround_minutes"),
        "preferred": contract.preferred_readers.select_related("user"),
        "can_center": policy.can_accept_for_center(actor, contract),
        "can_reader": policy.can_accept_for_reader(actor, contract)})


CONTRACT_ACTIONS = {
    "propose": lambda actor, contract, form, request: contract_services.contract_propose(
        actor=actor, contract=contract, request=request),
    "accept": lambda actor, contract, form, request: contract_services.contract_accept(
        actor=actor, contract=contract, request=request),
    "withdraw": lambda actor, contract, form, request: contract_services.contract_withdraw(
        actor=actor, contract=contract, reason=form.cleaned_data["reason"], request=request),
    "end": lambda actor, contract, form, request: contract_services.contract_end(
        actor=actor, contract=contract, reason=form.cleaned_data["reason"], request=request),
}


@login_required
@require_POST
@page_errors
def contract_action(request, public_id, action):
    actor = actor_of(request)
    contract = selectors.contract_get(actor=actor, public_id=public_id)
    return _act(request, actor, contract, CONTRACT_ACTIONS, action, noun="Contract", page="contract_detail")


# --- invoices -------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def invoice_list(request):
    actor = actor_of(request)
    is_finance = policy.is_platform_finance(actor)
    form = GenerateInvoicesForm(request.POST or None) if is_finance else None
    if request.method == "POST":
        if not is_finance:
            raise NotFound()
        if form.is_valid():
            year, month = form.cleaned_data["month"]
            center = form.cleaned_data["center"]
            made = ([invoice_services.invoice_generate(center=center, year=year, month=month, actor=actor)]
                    if center else invoice_services.invoice_generate_all(year=year, month=month, actor=actor))
            messages.success(request, f"{len(made)} invoice(s) for {year}-{month:02d} drafted or brought up to date.")
            return redirect("invoice_list")
    return render(request, "billing/invoice_list.html", {
        "invoices": selectors.invoice_list(actor=actor)[:500], "form": form, "is_finance": is_finance})


@login_required
@require_http_methods(["GET"])
@page_errors
def invoice_detail(request, public_id):
    actor = actor_of(request)
    invoice = selectors.invoice_get(actor=actor, public_id=public_id)
    return render(request, "billing/invoice_detail.html", {
        "invoice": invoice, "lines": selectors.invoice_lines(invoice),
        "is_finance": policy.is_platform_finance(actor), "card_payment": invoice_cards.payment_of(invoice),
        "can_pay_card": actor.has_role(invoice.center_id, *policy.MONEY_ROLES)})


INVOICE_ACTIONS = {
    "issue": lambda actor, invoice, form, request: invoice_services.invoice_issue(
        actor=actor, invoice=invoice, request=request),
    "paid": lambda actor, invoice, form, request: invoice_services.invoice_mark_paid(
        actor=actor, invoice=invoice, reference=form.cleaned_data["reference"], request=request),
    "void": lambda actor, invoice, form, request: invoice_services.invoice_void(
        actor=actor, invoice=invoice, reason=form.cleaned_data["reason"], request=request),
}


@login_required
@require_POST
@page_errors
def invoice_action(request, public_id, action):
    actor = actor_of(request)
    invoice = selectors.invoice_get(actor=actor, public_id=public_id)
    return _act(request, actor, invoice, INVOICE_ACTIONS, action, noun="Invoice", page="invoice_detail")


@login_required
@require_http_methods(["GET"])
@page_errors
def invoice_download(request, public_id, fmt):
    """The invoice as PDF or CSV (its lines name accession numbers: the download is audited)."""
    actor = actor_of(request)
    invoice = selectors.invoice_get(actor=actor, public_id=public_id)
    lines = list(selectors.invoice_lines(invoice))
    audit_record(action="invoice.downloaded", actor=actor.user, request=request, organization_id=invoice.center_id,
                 object_type="billing.invoice", object_id=str(invoice.public_id), extra={"format": fmt})
    name = invoice.number or f"draft-{invoice.public_id}"
    if fmt == "pdf":
        response = HttpResponse(invoice_pdf(invoice, lines), content_type="application/pdf")
    else:
        response = HttpResponse(invoice_csv(invoice, lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


# --- earnings -------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def earnings(request):
    """A radiologist's (or, with ``?group=slug``, a group's) earnings statement for one month."""
    actor = actor_of(request)
    group = None
    if request.GET.get("group"):
        group = Organization.objects.filter(slug=request.GET["group"], kind=Organization.Kind.RADIOLOGY_GROUP).first()
        if group is None:
            raise NotFound()
    accounts = selectors.payable_accounts(actor=actor, organization=group)
    if group is None and actor.user is not None and not hasattr(actor.user, "radiologist_profile"):
        raise NotFound()
    now = timezone.localtime()
    try:
        year, month = parse_month(request.GET.get("month") or f"{now:%Y-%m}")
    except ValidationError:  # a malformed month shows the current one
        year, month = now.year, now.month
    start, end = selectors.month_range(year, month, request.user.time_zone)
    rows = selectors.earnings(accounts=accounts, start=start, end=end)
    currency = accounts.values_list("currency", flat=True).first() or "USD"
    if request.GET.get("format") == "csv":
        return _csv_response(f"earnings-{year}-{month:02d}.csv",
                             ["posted_at_utc", "kind", "accession", "modality", "priority", "study", "gross", "fee",
                              "net", "currency", "transfer", "payout"],
                             [[r.posted_at.isoformat(), r.kind, r.accession, r.modality, r.priority, r.study, r.gross,
                               r.fee, r.net, currency, r.transfer, r.payout] for r in rows])
    payee = (connect.Payee(organization=group) if group is not None else
             connect.Payee(radiologist=actor.user.radiologist_profile))
    return render(request, "billing/earnings.html", {
        "rows": rows, "group": group, "month": f"{year}-{month:02d}", "currency": currency,
        "account": connect.account_of(payee), "stripe_on": stripe_client.enabled(),
        "totals": {"gross": sum(r.gross for r in rows), "fee": sum(r.fee for r in rows),
                   "net": sum(r.net for r in rows)},
        "owed": selectors.owed(accounts)})


# --- the finance dashboard ------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def finance_dashboard(request):
    """Platform finance: money per week (billed, fees, paid out, outstanding) and earnings per reader."""
    actor = actor_of(request)
    now = timezone.now()
    weeks = selectors.weekly(actor=actor, weeks=12, now=now)
    start, end = selectors.month_range(now.year, now.month, request.user.time_zone)
    readers = selectors.earnings_by_reader(actor=actor, start=start, end=end)
    export = request.GET.get("export")
    if export == "weeks":
        return _csv_response("finance-weeks.csv", ["week_starting", "billed", "fees", "paid_out", "outstanding"],
                             [[w.starts.isoformat(), w.billed, w.fees, w.paid_out, w.outstanding] for w in weeks])
    if export == "readers":
        return _csv_response("earnings-by-reader.csv", ["payee", "net_earnings"], readers)

    def dollars(value):
        return format_money(int(value), "USD")

    labels = [f"{w.starts:%d %b}" for w in weeks]
    return render(request, "billing/finance_dashboard.html", {
        "weeks": weeks, "readers": readers,
        "billed_chart": bar_chart(list(zip(labels, [w.billed for w in weeks], strict=True)),
                                  title="Billed to centers per week", fmt=dollars),
        "fees_chart": bar_chart(list(zip(labels, [w.fees for w in weeks], strict=True)),
                                title="Platform fees per week", fmt=dollars),
        "paid_chart": bar_chart(list(zip(labels, [w.paid_out for w in weeks], strict=True)),
                                title="Paid out to readers per week", fmt=dollars),
        "outstanding_chart": bar_chart(list(zip(labels, [w.outstanding for w in weeks], strict=True)),
                                       title="Receivables outstanding at each week's end", fmt=dollars),
        "readers_chart": bar_chart(readers[:15], title="Earnings per reader this month", fmt=dollars,
                                   bar_width=56)})

