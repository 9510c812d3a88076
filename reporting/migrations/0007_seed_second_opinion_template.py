"""The platform's "Second opinion" template (issue 17), from ``reporting.seed_templates.SECOND_OPINION``.

Only this template: the others, seeded by 0003, may have been edited by platform operations since. On a
new database 0003 has written it already (it reads the same list); here it gets the seed's definition
again. Going back leaves it in place (reports may point at it).
"""

import copy

from django.db import migrations

from reporting import seed_templates


def seed(apps, schema_editor):
    ReportTemplate = apps.get_model("reporting", "ReportTemplate")
    definition = seed_templates.SECOND_OPINION
    values = copy.deepcopy({key: definition[key] for key in ("modalities", "body_parts", "sections", "fields")})
    ReportTemplate.objects.update_or_create(owner=None, name=definition["name"], defaults={**values, "active": True})


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0006_patient_question"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
