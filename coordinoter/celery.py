import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinoter.settings")
# Workers and beat skip Django's system checks (Celery's Django fix-up runs them at every start: about 165 ms of CPU
# per process, most of it importing every view and form for the URL checks). `manage.py migrate` runs them before any
# worker starts (docker-compose.yml), and `make check-deploy` runs the deployment checks. CELERY_SKIP_CHECKS="" runs
# them again.
os.environ.setdefault("CELERY_SKIP_CHECKS", "true")

app = Celery("coordinoter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The tasks modules of the apps' packages (integrations.webhooks.tasks, integrations.outbound.tasks) are searched too,
# so every worker registers them without a list of names to keep.
app.autodiscover_tasks(["integrations.webhooks", "integrations.outbound"])

import coordinoter.queue  # noqa: E402,F401 - the one enqueue gateway; its runner starts with the first request
import coordinoter.task_context  # noqa: E402,F401 - request ids travel with tasks into the worker's logs
import coordinoter.task_db  # noqa: E402,F401 - a worker keeps its database connection between tasks (CONN_MAX_AGE)
import coordinoter.worker_start  # noqa: E402,F401 - a worker compiles and connects before its first task

# The one beat schedule. Entries are added by the apps' tasks as they are built (see docs/architecture.md).
app.conf.beat_schedule = {
    # integrations: keep idle Xero refresh tokens alive and check every tenant is still connected (daily for each,
    # at its own time of day: the fan-out runs every window); finish pending disconnects and clean up abandoned
    # tenant choices (every 15 minutes).
    "xero-keepalive": {
        "task": "integrations.xero_keepalive_fanout",
        "schedule": int(os.environ.get("XERO_KEEPALIVE_WINDOW_SECONDS") or 600),
    },
    "xero-housekeeping": {"task": "integrations.xero_housekeeping", "schedule": 15 * 60},
    # invoices: re-dispatch push chunks whose worker died or whose reschedule was lost, and tenants with pending
    # invoices and nothing in flight (after a reconnect, a mapping chosen, a broker outage).
    # invoices: one email to the admins about invoices that failed or need attention since the last one.
    "failure-digest": {
        "task": "invoices.tasks.failure_digest_all",
        "schedule": int(os.environ.get("FAILURE_DIGEST_SECONDS") or 3600),
    },
    "push-sweep": {"task": "invoices.tasks.push_sweep", "schedule": float(os.environ.get("PUSH_SWEEP_SECONDS") or 30)},
}
# The two-way sync: pick up inbox events nobody is processing (broker was down, worker died) and changes waiting to
# go to Xero; poll the tenants due for what a webhook missed, a page every XERO_RECONCILE_EVERY_SECONDS (a minute).
app.conf.beat_schedule.update(
    {
        "xero-webhook-sweep": {"task": "integrations.webhook_tasks.sweep_webhook_inbox", "schedule": 30},
        "outbound-sweep": {
            "task": "integrations.outbound.tasks.sweep_operations",
            "schedule": float(os.environ.get("OUTBOUND_SWEEP_SECONDS") or 30),
        },
        "xero-reconcile": {
            "task": "integrations.webhook_tasks.reconcile_all",
            "schedule": int(os.environ.get("XERO_RECONCILE_EVERY_SECONDS") or 60),
        },
    }
)
