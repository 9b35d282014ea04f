"""Starting the sandbox: flags, environment variables and a state file that survives a restart."""

from __future__ import annotations

import socket

import requests

from xero_sandbox.seed import AU_ID
from xero_sandbox.testing import start_sandbox


def test_settings_come_from_environment_when_flags_absent(tmp_path):
    env = {
        "XERO_SANDBOX_CLIENT_ID": "env-client",
        "XERO_SANDBOX_TIME_SCALE": "12",
        "XERO_SANDBOX_REDIRECT_URIS": "http://localhost:9999/cb/,http://localhost:9998/cb/",
        "XERO_SANDBOX_FAULTS": "503,count=1,path=/api.xro/2.0/Organisation",
    }
    with start_sandbox(env=env, client_secret="s3cret") as sandbox:
        settings = sandbox.settings()
        assert settings["client_id"] == "env-client" and settings["time_scale"] == 12.0
        assert settings["redirect_uris"] == ["http://localhost:9999/cb/", "http://localhost:9998/cb/"]
        assert sandbox.faults()[0]["kind"] == "503"
        sandbox.client_id = "env-client"
        sandbox.redirect_uris = settings["redirect_uris"]
        tokens = sandbox.connect()
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": AU_ID}
        assert requests.get(sandbox.api_url + "/Organisation", headers=headers).status_code == 503
        assert requests.get(sandbox.api_url + "/Organisation", headers=headers).status_code == 200


def test_state_file_keeps_data_and_tokens_when_restarted(tmp_path):
    state = str(tmp_path / "sandbox.sqlite3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with start_sandbox(state=state, port=port) as sandbox:
        tokens = sandbox.connect()
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": AU_ID}
        created = requests.put(
            sandbox.api_url + "/Contacts", headers=headers, json={"Contacts": [{"Name": "Persistent Pty"}]}
        )
        assert created.status_code == 200
    with start_sandbox(state=state, port=port) as sandbox:  # same URL, so the same issuer
        listed = requests.get(sandbox.api_url + "/Contacts", headers=headers, params={"searchTerm": "Persistent"})
        assert listed.status_code == 200 and len(listed.json()["Contacts"]) == 1
        refreshed = requests.post(
            sandbox.token_endpoint,
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 200


def test_admin_api_requires_token_when_admin_token_set():
    with start_sandbox(admin_token="let-me-in") as sandbox:
        assert sandbox.state()["tenants"]
        assert requests.get(sandbox.url + "/_sandbox/state").status_code == 401


def test_extra_organisations_are_seeded_with_their_own_ids_when_asked():
    with start_sandbox(extra_orgs=3) as sandbox:
        tenants = sandbox.tenants()
        granted = sandbox.connect(tenants=[tenants[4]["tenantId"]])
    names = [t["name"] for t in tenants]
    assert names[2:] == ["Extra Org 00 (AU)", "Extra Org 01 (AU)", "Extra Org 02 (AU)"]
    assert len({t["tenantId"] for t in tenants}) == len({t["shortCode"] for t in tenants}) == 5
    assert [c["tenantName"] for c in granted["connections"]] == ["Extra Org 02 (AU)"]
