"""A patient's second-opinion pages (issue 17): order on a study, pay, follow, cancel, receipt.

Thin: the form's shape here, the rules in ``marketplace.services.orders``, reads in
``marketplace.order_selectors``; anything not the patient's own is 404. The report itself is
reporting's (a page fragment the order page loads by URL name).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.credentials.vocab import Subspecialty
from accounts.forms import ApplicationErrorFormMixin
from accounts.patients import patient_profile
from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import ApplicationError, NotFound
from core.money import format_money
from marketplace import order_selectors
from marketplace.order_models import Question, Turnaround
from marketplace.services import orders


class OrderForm(ApplicationErrorFormMixin, forms.Form):
    question = forms.ChoiceField(choices=Question.choices, widget=forms.RadioSelect, initial=Question.WHOLE_STUDY,
                                 label="What would you like?")
    question_text = forms.CharField(required=False, max_length=2000, label="Your question",
                                    widget=forms.Textarea(attrs={"rows": 3}),
                                    help_text="For a specific question: what should the specialist look at?")
    subspecialty = forms.ChoiceField(choices=Subspecialty.choices, label="Kind of specialist")
    turnaround = forms.ChoiceField(choices=Turnaround.choices, widget=forms.RadioSelect,
                                   initial=Turnaround.STANDARD, label="Turnaround")
    accept_terms = forms.BooleanField(required=False, label="I have read and accept the terms of a second opinion")


def _details_first(request):
    messages.info(request, "Tell us your date of birth and where you live first: the specialist's license must "
                           "cover where you live.")
    return redirect("patient_details")


@login_required
@require_http_methods(["GET"])
@page_errors
def opinion_order_list(request):
    actor = actor_of(request)
    if not actor.is_patient:
        raise NotFound()
    rows = [(order, order_selectors.progress(order)) for order in order_selectors.orders_of(actor=actor)]
    return render(request, "marketplace/opinion_order_list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def opinion_order_create(request, study_id):
    """Choose the question, the specialist and the turnaround; see the price and how many could read it."""
    actor = actor_of(request)
    if actor.is_patient and patient_profile(actor.user) is None:
        return _details_first(request)
    study = orders.orderable_study(actor=actor, public_id=study_id)
    profile = patient_profile(actor.user)
    suggested = orders.suggested_subspecialty(study)
    form = OrderForm(request.POST or None, initial={"subspecialty": suggested})
    if request.method == "POST" and form.is_valid():
        data = orders.OrderData(study=study, **form.cleaned_data)
        with rule_refusals(form.add_application_error) as call:
            order = orders.order_create(actor=actor, data=data, request=request)
        if call.ok:
            return redirect("opinion_order_detail", order.public_id)
    subspecialty = form.data.get("subspecialty") or suggested
    prices = {t: orders.quote(study, t, profile.space) for t in Turnaround.values}
    readers = orders.eligible_reader_count(study=study, subspecialty=subspecialty, turnaround=Turnaround.STANDARD,
                                           jurisdiction=profile.jurisdiction, space=profile.space)
    return render(request, "marketplace/opinion_order_create.html", {
        "form": form, "study": study, "profile": profile, "suggested": Subspecialty(suggested).label,
        "prices": [(Turnaround(t).label, format_money(q.cents, q.currency)) for t, q in prices.items()],
        "readers": readers, "subspecialty_label": Subspecialty(subspecialty).label
        if subspecialty in Subspecialty.values else ""})


@login_required
@require_http_methods(["GET"])
@page_errors
def opinion_order_detail(request, public_id):
    actor = actor_of(request)
    order = order_selectors.order_get(actor=actor, public_id=public_id)
    if request.GET.get("paid") and order.status == "draft":
        messages.info(request, "Thank you: your payment is being confirmed. This page updates in a moment.")
    return render(request, "marketplace/opinion_order_detail.html", {
        "order": order, "progress": order_selectors.progress(order), "steps": order_selectors.STEPS,
        "payment": orders.payment_of(order), "price": format_money(order.quoted_cents, order.currency)})


@login_required
@require_POST
@page_errors
def opinion_order_pay(request, public_id):
    """To the checkout page (Stripe's, or the test-payment page where Stripe is off)."""
    actor = actor_of(request)
    order = order_selectors.order_get(actor=actor, public_id=public_id)
    try:
        payment = orders.order_checkout(actor=actor, order=order, request=request)
    except ApplicationError as exc:  # paid already (the existing payment is on the order page), or cancelled
        messages.error(request, exc.message)
        return redirect("opinion_order_detail", order.public_id)
    return redirect(payment.checkout_url)


@login_required
@require_POST
@page_errors
def opinion_order_cancel(request, public_id):
    actor = actor_of(request)
    order = order_selectors.order_get(actor=actor, public_id=public_id)
    order = orders.order_cancel(actor=actor, order=order, request=request)
    messages.success(request, order.cancel_reason)
    return redirect("opinion_order_detail", order.public_id)


@login_required
@require_http_methods(["GET"])
@page_errors
def opinion_order_receipt(request, public_id):
    actor = actor_of(request)
    order = order_selectors.order_get(actor=actor, public_id=public_id)
    payment = orders.payment_of(order)
    if payment is None or payment.paid_at is None:
        raise NotFound("No payment has been made for this order.")
    return render(request, "marketplace/opinion_order_receipt.html", {
        "order": order, "payment": payment, "amount": format_money(payment.amount_cents, payment.currency)})

