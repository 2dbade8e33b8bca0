"""The Celery application. Tasks live in the apps (``stats.tasks`` etc.)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitplatform.settings.base")

app = Celery("fitplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
