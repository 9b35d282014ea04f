"""gunicorn's settings for the web process (docker-compose.yml and the Dockerfile run `gunicorn -c gunicorn.conf.py`).

There is no proxy in front in the compose shape, so gunicorn itself bounds what a client may send before Django sees
it: the request line, the number and size of headers, and the time a worker waits. Bodies are bounded by Django
(coordinoter.middleware.RequestBoundsMiddleware refuses an oversized Content-Length with 413 before anything reads
it; gunicorn has no body limit of its own). https://docs.gunicorn.org/en/stable/settings.html#security
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))

# The longest URL the portal makes is the live Xero-states poll (up to 100 invoice ids): well under 4 KB.
limit_request_line = 4094
# Browsers send about 15 headers; 50 leaves room for proxies added later.
limit_request_fields = 50
# A header's size, cookies included (the session and CSRF cookies are small).
limit_request_field_size = 8190
# A sync worker is held by one slow client at a time: give up on a request after 30 s, idle keep-alive after 2 s.
timeout = 30
graceful_timeout = 30
keepalive = 2

# X-Forwarded-* headers are trusted only from these addresses. With no proxy in front that is nobody but the
# machine itself; behind a proxy set FORWARDED_ALLOW_IPS to its address (and TRUSTED_PROXY_COUNT for Django).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)s'
