"""Finance pages (access rules in ``billing.policy.PAGE_ROUTES``)."""

from django.urls import path

from billing import payment_views, payout_views, views

urlpatterns = [
    path("billing/contracts/", views.contract_list, name="contract_list"),
    path("billing/contracts/new/", views.contract_create, name="contract_create"),
    path("billing/contracts/<uuid:public_id>/", views.contract_detail, name="contract_detail"),
    path("billing/contracts/<uuid:public_id>/<slug:action>/", views.contract_action, name="contract_action"),
    path("billing/invoices/", views.invoice_list, name="invoice_list"),
    path("billing/invoices/<uuid:public_id>/", views.invoice_detail, name="invoice_detail"),
    path("billing/invoices/<uuid:public_id>/<slug:action>/", views.invoice_action, name="invoice_action"),
    path("billing/invoices/<uuid:public_id>.<str:fmt>", views.invoice_download, name="invoice_download"),
    path("billing/earnings/", views.earnings, name="earnings"),
    path("billing/finance/", views.finance_dashboard, name="finance_dashboard"),
    path("billing/payouts/", payout_views.payout_list, name="payout_list"),
    path("billing/payouts/<uuid:public_id>/", payout_views.payout_detail, name="payout_detail"),
    path("billing/payouts/by-hand/<uuid:public_id>/", payout_views.manual_payout_detail, name="manual_payout_detail"),
    path("billing/earnings/payouts/", payout_views.payout_onboarding, name="payout_onboarding"),
    path("billing/payments/<uuid:public_id>/return/", payment_views.payment_return, name="payment_return"),
    path("billing/payments/<uuid:public_id>/test-payment/", payment_views.payment_test_pay, name="payment_test_pay"),
    path("billing/payments/invoice/<uuid:public_id>/", payment_views.invoice_pay_card, name="invoice_pay_card"),
]
