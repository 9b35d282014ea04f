# XeroConnection, the webhook inbox and the integration audit trail live here (see docs/architecture.md).
