from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.demo_hooks import register_demo_loader
        from marketplace.template_choices import register_template_provider
        from reporting.templates import center_choices

        register_demo_loader("reporting", "reporting.demo.load_demo_reporting")  # after the marketplace's demo
        register_demo_loader("reporting", "reporting.demo_quality.load_demo_quality")  # then quality (#16)
        register_template_provider(center_choices)  # the templates a center's overflow rules may name (#18)
