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
