import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinoter.settings")

app = Celery("coordinoter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The one beat schedule. Entries are added by the apps' tasks as they are built (see docs/architecture.md).
app.conf.beat_schedule = {}
