from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.dashboard_panels import register_dashboard_panel
        from accounts.demo_hooks import register_demo_loader
        from marketplace.dashboard import marketplace_panel
        from marketplace.ris import orders as ris_orders
        from marketplace.services import orders
        from studies.hooks import on_studies_received

        # In this order, imported by load_demo only: the RIS orders (#23) and the overflow postings (#18) use
        # the marketplace demo's studies and readers.
        register_demo_loader("marketplace", "marketplace.demo.load_demo_marketplace")
        register_demo_loader("marketplace", "marketplace.demo_ris.load_demo_ris")
        register_demo_loader("marketplace", "marketplace.demo_coverage.load_demo_coverage")
        register_dashboard_panel("marketplace", marketplace_panel)
        orders.register()  # billing tells the marketplace when an order's payment settles or refunds
        on_studies_received(ris_orders.on_studies_received)  # a study meets its waiting RIS order (issue 23)
        from marketplace.services import overflow

        on_studies_received(overflow.on_studies_received)  # overflow rules of the hours kind post on arrival (#18)
