from django.db import migrations


def forwards(apps, schema_editor):
    from measures.scales import load_scales

    load_scales(apps.get_model("measures", "Scale"))


class Migration(migrations.Migration):
    dependencies = [("measures", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
