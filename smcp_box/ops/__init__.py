"""Running the box as an appliance: systemd integration and TLS certificates.

- ``sdnotify``: the sd_notify datagram protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING)
  and a watchdog loop that pings only while the box's health checks pass.
- ``activation``: socket activation (the sd_listen_fds protocol) turned into Hypercorn binds.
- ``certs``: a local certificate authority and server certificates.
- ``cert_command``: the ``smcp-box cert`` subcommand (parser and runner) on top of ``certs``.
- ``tls``: the server's ``ssl.SSLContext``, reloadable on SIGHUP without dropping connections.

Nothing here imports the rest of the package except ``errors``, so ``serve`` and the CLI can use
it without cycles. None of it needs systemd: outside systemd the notify and activation calls
are quiet no-ops.
"""
