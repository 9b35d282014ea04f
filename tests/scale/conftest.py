"""The scale tests reuse the security suite's settings: Xero mocked at the HTTP edge, tasks recorded, fast hasher."""

from tests.security.conftest import _tasks_recorded, security_settings, xero_mock  # noqa: F401 - fixtures
