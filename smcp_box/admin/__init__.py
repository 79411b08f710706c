"""The admin API: a JSON API on a Unix socket, its client, and the CLI commands that use it.

Routes (all JSON, under ``/v1``)::

    GET    /status                       version, uptime, redacted config, failed tenants
    GET    /metrics?window=&tenant=      live metrics per tenant and in total
    GET    /tenants                      loaded tenants and those that failed to load
    POST   /tenants                      add: {"manifest": toml text, "module": base64 wasm}
    GET    /tenants/<name>               one tenant, with sessions, keys, kv and pool figures
    POST   /tenants/<name>/enable|disable
    PATCH  /tenants/<name>/limits        {"fuel": 1000000, "timeout_ms": null, ...}
    POST   /tenants/<name>/reload        re-read tenant.toml and the module
    DELETE /tenants/<name>               remove the tenant, its folder and its data
    GET    /keys?tenant=                 API keys (never their secrets)
    POST   /keys                         {"tenant", "label"} -> the secret, once
    DELETE /keys/<key_id>                revoke
    GET    /sessions?tenant=&ended=      sessions
    DELETE /sessions/<tenant>/<id>       end a session
    GET    /audit?after_id=&before_id=&limit=&tenant=&event=&actor=&outcome=
    GET    /audit/follow?after_id=&wait= long-poll for new audit rows

Import the parts from their modules (``smcp_box.admin.server.serve_admin``,
``smcp_box.admin.client.AdminClient``): the package itself imports nothing, so that the TUI and
the CLI client never load the box (wasmtime, the store) just to talk to it.
"""
