"""Every setting, read from the environment.

DJANGO_DEBUG=true is local development: safe defaults, SQLite unless DATABASE_URL is set, tasks in process
unless REDIS_URL is set. Anything else is production, which refuses to start without its secrets.

One package, one settings module for Django (DJANGO_SETTINGS_MODULE=coordinoter.settings): base.py holds Django's
own settings and the app's, and checks the production secrets first; xero.py holds everything about Xero.
"""

from coordinoter.settings.base import *  # noqa: F403
from coordinoter.settings.xero import *  # noqa: F403
