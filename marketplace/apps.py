from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.dashboard_panels import register_dashboard_panel
        from accounts.demo_hooks import register_demo_loader
        from marketplace.dashboard import marketplace_panel
        from marketplace.services import orders

        register_demo_loader("marketplace", "marketplace.demo.load_demo_marketplace")  # imported by load_demo only
        register_dashboard_panel("marketplace", marketplace_panel)
        orders.register()  # billing tells the marketplace when an order's payment settles or refunds
