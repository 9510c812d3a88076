"""Seed the platform's default price list per currency (billing.price_defaults); existing cells are kept."""

from django.db import migrations


def seed(apps, schema_editor):
    from billing import price_defaults

    price_defaults.seed(apps.get_model("billing", "PriceList"), apps.get_model("billing", "Price"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_ledger_balanced_and_immutable")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
