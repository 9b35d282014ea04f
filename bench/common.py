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


def bench_env(*, database_url: str, redis_url: str) -> dict[str, str]:
    """What a bench's own process needs to load the product's settings (development mode, throwaway keys), on its
    own database and Redis database."""
    import uuid

    from cryptography.fernet import Fernet

    return {
        "DJANGO_SETTINGS_MODULE": "coordinoter.settings",
        "DJANGO_DEBUG": "true",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "XERO_WEBHOOK_KEY": uuid.uuid4().hex,
        "XERO_REDIRECT_URI": "http://127.0.0.1/integrations/xero/callback/",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


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


# Our own packages; a process of the product imports these (and the sandbox's) from source.
PRODUCT_PACKAGES = ("coordinoter", "integrations", "invoices", "organisations", "xero_sandbox")


def compile_product() -> None:
    """Write the product's bytecode before its processes start, as a deploy does and `scripts/run.sh` does. Where
    PYTHONDONTWRITEBYTECODE is set (this machine's environment), each worker would otherwise compile every module of
    ours again at start-up (about 0.3 CPU-s of the parent's 1.1 on 7 Dec) and never write it down."""
    import compileall
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for name in PRODUCT_PACKAGES:
        compileall.compile_dir(str(root / name), quiet=1)


class AutovacuumStandIn:
    """PostgreSQL's autovacuum, for a server that runs with it off (this machine's does: `SHOW autovacuum`).

    Production runs with autovacuum on; without it a benchmark that updates every invoice three times reads through
    ever more dead row versions, and a table filled after TRUNCATE has no statistics for the planner. Every
    `autovacuum_naptime` this applies autovacuum's own rule, with the server's own settings, to the database's
    tables: VACUUM when dead rows pass autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor x live rows,
    ANALYZE when rows changed since the last analyze pass the analyze threshold likewise. Its work is PostgreSQL's
    (counted with the server's CPU), as autovacuum's would be. Does nothing when autovacuum is on.
    """

    def __init__(self, dsn: str) -> None:
        import threading

        self.dsn = dsn
        self.vacuums = self.analyzes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "AutovacuumStandIn":
        self._thread.start()
        return self

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(60)
        return {"vacuums": self.vacuums, "analyzes": self.analyzes}

    def _run(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('autovacuum')::bool, extract(epoch FROM "
                    "current_setting('autovacuum_naptime')::interval), "
                    "current_setting('autovacuum_vacuum_threshold')::float, "
                    "current_setting('autovacuum_vacuum_scale_factor')::float, "
                    "current_setting('autovacuum_analyze_threshold')::float, "
                    "current_setting('autovacuum_analyze_scale_factor')::float"
                )
                on, naptime, vacuum_at, vacuum_factor, analyze_at, analyze_factor = cursor.fetchone()
                naptime = float(naptime)  # extract() gives a numeric: a Decimal, which Event.wait() refuses
                if on:
                    return
                while True:
                    cursor.execute(
                        "SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze FROM pg_stat_user_tables"
                    )
                    for table, live, dead, changed in cursor.fetchall():
                        if dead > vacuum_at + vacuum_factor * live:
                            cursor.execute(f'VACUUM (ANALYZE) "{table}"')
                            self.vacuums += 1
                            self.analyzes += 1
                        elif changed > analyze_at + analyze_factor * live:
                            cursor.execute(f'ANALYZE "{table}"')
                            self.analyzes += 1
                    if self._stop.wait(naptime):
                        return
        finally:
            conn.close()


def cpu_calibration() -> float:
    """CPU seconds this process takes for a fixed piece of pure-Python work of the push's kind (dicts, Decimals,
    JSON both ways): about 0.16 s on the 2 vCPU VM. The VM's speed drifts (one unchanged code measured 0.96 and then
    1.17-1.28 worker CPU-s per 1,000 invoices within an hour on 5 Dec), so a figure from /proc is comparable with
    another only beside this one, taken in the same run."""
    import json
    import time
    from decimal import Decimal

    started = time.process_time()
    for round_ in range(300):
        rows = [
            {"id": i, "number": f"INV-{round_}-{i}", "total": str(Decimal(i) / 7), "lines": [{"q": i, "u": 1.5}] * 3}
            for i in range(50)
        ]
        json.loads(json.dumps(rows))
    return round(time.process_time() - started, 3)
