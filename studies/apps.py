from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "studies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.demo_hooks import register_demo_loader
        from studies.demo import load_demo_studies

        register_demo_loader("studies", load_demo_studies)
