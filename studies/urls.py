"""Study pages (list, detail, upload). Access rules: studies.policy.ROUTES."""

urlpatterns: list = []
