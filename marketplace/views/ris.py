"""The center's RIS link (issue 23): its HL7 interfaces (admins), the orders that came in and the studies that
wait for one (the center's viewing roles), the message log in and out with ACKs (admins). Anyone else, and any
other center's object, gets 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from core.errors import NotFound
from marketplace.ris import orders as ris_orders
from marketplace.ris import selectors
from marketplace.ris.forms import InterfaceForm
from marketplace.ris.interfaces import InterfaceData, interface_save
from marketplace.ris_models import Hl7Message, RisOrderStatus

LOG_ROWS = 200


def _interface_data(form: InterfaceForm) -> InterfaceData:
    data = form.cleaned_data
    return InterfaceData(sending_application=data["sending_application"], sending_facility=data["sending_facility"],
                         allowed_hosts=form.hosts(), outbound_host=data.get("outbound_host") or "",
                         outbound_port=data.get("outbound_port"), active=bool(data.get("active")))


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def ris_interfaces(request):
    """The center's interfaces, and the form that registers one."""
    actor = actor_of(request)
    center = actor.active_organization
    interfaces = list(selectors.interface_list(actor=actor, center=center))
    form = InterfaceForm(request.POST or None, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            interface_save(actor=actor, center=center, data=_interface_data(form), request=request)
        if call.ok:
            messages.success(request, "Interface registered: its orders are taken from now on.")
            return redirect("ris_interfaces")
    problems = list(selectors.outbound_problems(actor=actor, center=center)[:20])
    return render(request, "marketplace/ris/interfaces.html", {
        "center": center, "interfaces": interfaces, "form": form, "problems": problems,
    }, status=400 if form.is_bound and form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def ris_interface_edit(request, public_id):
    actor = actor_of(request)
    center = actor.active_organization
    interface = selectors.interface_get(actor=actor, center=center, public_id=public_id)
    initial = {name: getattr(interface, name) for name in ("sending_application", "sending_facility",
                                                            "outbound_host", "outbound_port", "active")}
    initial["allowed_hosts"] = "\n".join(interface.allowed_hosts)
    form = InterfaceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            interface_save(actor=actor, center=center, data=_interface_data(form), interface=interface,
                           request=request)
        if call.ok:
            messages.success(request, "Interface saved.")
            return redirect("ris_interfaces")
    return render(request, "marketplace/ris/interface_edit.html", {
        "center": center, "interface": interface, "form": form,
    }, status=400 if form.is_bound and form.errors else 200)


@login_required
@page_errors
def ris_order_list(request):
    """Orders by status with held reasons and links to their read requests; studies waiting for an order."""
    actor = actor_of(request)
    center = actor.active_organization
    status = request.GET.get("status", "")
    orders = list(selectors.order_list(actor=actor, center=center, status=status)[:LOG_ROWS])
    return render(request, "marketplace/ris/orders.html", {
        "center": center, "orders": orders, "status": status, "statuses": RisOrderStatus.choices,
        "unordered": selectors.studies_waiting_for_order_for(actor=actor, center=center),
        "wait_minutes": selectors.wait_minutes(),
        "manages": selectors.can_manage_ris(actor, center),
    })


@login_required
@require_POST
@page_errors
def ris_order_release(request, public_id):
    """A person checked a held order's study: post its read request."""
    actor = actor_of(request)
    order = selectors.order_list(actor=actor, center=actor.active_organization).filter(public_id=public_id).first()
    if order is None:
        raise NotFound()
    with rule_refusals(message_refusal(request)) as call:
        order = ris_orders.ris_order_release(actor=actor, order=order)
    if call.ok:
        messages.success(request, f"Order {order.placer_order_number}: {order.get_status_display().lower()}.")
    return redirect("ris_order_list")


@login_required
@page_errors
def ris_message_list(request):
    """Every message in and out, newest first, with its ACK; the raw text is shown escaped by the template."""
    actor = actor_of(request)
    center = actor.active_organization
    direction = request.GET.get("direction", "")
    rows = list(selectors.message_list(actor=actor, center=center, direction=direction)[:LOG_ROWS])
    return render(request, "marketplace/ris/messages.html", {
        "center": center, "rows": [(m, _text(m.raw), _text(m.ack)) for m in rows], "direction": direction,
        "directions": Hl7Message.Direction.choices,
    })


def _text(value) -> str:
    """HL7 segments end in CR: shown one a line."""
    return bytes(value or b"").decode("utf-8", errors="replace").replace("\r", "\n").strip()
