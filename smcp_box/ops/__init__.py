"""Running the box as an appliance: systemd integration, TLS, and the maintenance commands.

- ``sdnotify``: the sd_notify datagram protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING)
  and a watchdog loop that pings only while the box's health checks pass.
- ``activation``: socket activation (the sd_listen_fds protocol) turned into Hypercorn binds.
- ``certs``: a local certificate authority and server certificates.
- ``cert_command``: the ``smcp-box cert`` subcommand (parser and runner) on top of ``certs``.
- ``tls``: the server's ``ssl.SSLContext``, reloadable on SIGHUP without dropping connections.
- ``reload``: what SIGHUP applies (settings, tenants, certificate) and what waits for a restart.
- ``cli_commands``: ``backup``, ``restore``, ``doctor`` and ``audit export|verify``, built on
  ``backup``, ``doctor``, ``audit_cli`` and ``offline`` (the box's files, found, never created).

``sdnotify``, ``activation``, ``certs``, ``cert_command`` and ``tls`` import nothing of the
package but ``errors``, so ``serve`` and the CLI use them without cycles; none of them needs
systemd (outside it the notify and activation calls are quiet no-ops). The rest work on the
box's store and tenants and import those.
"""
