from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.demo_hooks import register_demo_loader

        register_demo_loader("billing", "billing.demo.load_demo_billing")  # after the reporting demo
        from billing.services import invoice_cards

        invoice_cards.register()  # a card payment of an invoice marks it paid
