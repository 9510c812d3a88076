"""The platform's report templates (owner empty), written from ``reporting.seed_templates``.

Idempotent by name: a template already there gets the seed's definition again (modalities, body parts,
sections, fields, active); anything else on it stays. Going back leaves the templates in place (reports
may point at them).
"""

import copy

from django.db import migrations

from reporting import seed_templates


def seed(apps, schema_editor):
    ReportTemplate = apps.get_model("reporting", "ReportTemplate")
    for definition in seed_templates.TEMPLATES:
        values = copy.deepcopy({key: definition[key] for key in ("modalities", "body_parts", "sections", "fields")})
        ReportTemplate.objects.update_or_create(owner=None, name=definition["name"],
                                                defaults={**values, "active": True})


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0002_signed_content_immutable"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
