"""Helpers shared by the benchmarks."""


def create_database(url: str) -> None:
    """Create the PostgreSQL database named at the end of `url` if it does not exist yet."""
    import psycopg2
    from psycopg2 import sql

    base, name = url.rsplit("/", 1)
    conn = psycopg2.connect(base + "/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if not cursor.fetchone():
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def delete_organisations(queryset) -> None:
    """Delete organisations and everything they own (invoices first: an invoice protects its customer)."""
    from invoices.models import Invoice

    Invoice.objects.filter(organisation__in=queryset).delete()
    queryset.delete()


def production_env(common: dict[str, str], *, log_level: str = "INFO") -> dict[str, str]:
    """The environment of processes that must run as production does (DJANGO_DEBUG off: no debug cursor recording
    every query, production logging), on top of `common`, which must carry TOKEN_ENCRYPTION_KEYS, XERO_WEBHOOK_KEY
    and XERO_REDIRECT_URI besides the database, Redis and Xero settings."""
    import uuid

    return {
        **common,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": log_level,
    }
