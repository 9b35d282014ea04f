"""Moved to integrations/webhooks/selectors.py. Kept only while integrations/usage/ (moved on another branch at the same
time) still imports this name; delete once it imports integrations.webhooks.selectors."""

from integrations.webhooks.selectors import Lag, webhook_lag_by_hour, webhook_lag_percentiles  # noqa: F401
