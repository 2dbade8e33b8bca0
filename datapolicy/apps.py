from django.apps import AppConfig


class DatapolicyConfig(AppConfig):
    name = "datapolicy"
    verbose_name = "Datapolitik"
