"""Seed the platform's default price list per currency (billing.price_defaults); existing cells are kept."""

from django.db import migrations


def seed(apps, schema_editor):
    from billing import price_defaults

    PriceList = apps.get_model("billing", "PriceList")
    Price = apps.get_model("billing", "Price")
    for currency, name in price_defaults.CURRENCIES.items():
        price_list, _ = PriceList.objects.get_or_create(currency=currency, defaults={"name": name})
        have = set(Price.objects.filter(price_list=price_list).values_list("modality", "priority", "band"))
        Price.objects.bulk_create([Price(price_list=price_list, modality=m, priority=p, band=b, cents=c)
                                   for m, p, b, c in price_defaults.rows() if (m, p, b) not in have])


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_ledger_balanced_and_immutable")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
