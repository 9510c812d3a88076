from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "studies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.dashboard_panels import register_dashboard_panel
        from accounts.demo_hooks import register_demo_loader
        from studies.dashboard import recent_studies_panel

        register_demo_loader("studies", "studies.demo.load_demo_studies")  # imported by load_demo only (pydicom)
        register_dashboard_panel("studies", recent_studies_panel)
