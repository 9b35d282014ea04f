"""python -m xero_sandbox [flags]: run the sandbox Xero until interrupted."""

from __future__ import annotations

import signal
import sys

from .config import config_from_args
from .server import make_server


def main(argv=None) -> int:
    config = config_from_args(argv)
    app, httpd = make_server(config)
    s = app.settings.s

    def stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # The first line is machine-readable: xero_sandbox.testing waits for it.
    print(f"xero_sandbox listening on {app.base_url}", flush=True)
    print(f"  client id {s.client_id}; redirect URIs: {', '.join(s.redirect_uris)}", flush=True)
    print(f"  login demo@sandbox.test / sandbox; time scale {s.time_scale}; state {config.state}", flush=True)
    print(f"  webhooks: {s.webhook_url or '(no URL set)'}; admin API {app.base_url}/_sandbox/state", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        app.webhooks.stop()
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
