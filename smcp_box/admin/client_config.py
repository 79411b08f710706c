"""``smcp-box client-config``: the exact snippet each MCP client needs to reach one tenant.

One function, :func:`client_snippet`, knows every client's format; the command, the admin API's
answer to ``key create`` (its ``client_config``) and the TUI's new-key dialog all use it, so a
format fixed here is fixed everywhere.

The credential is either a real key (``--new-key`` creates one, shown once) or a placeholder the
client fills in: VS Code prompts for it (an ``inputs`` entry with ``password: true``, so the key
never lands in a workspace file), the others read ``SMCP_BOX_KEY`` from the environment or have
it pasted in. A tenant with ``auth = "none"`` gets no header at all, and neither does one with
``auth = "oauth"``: its clients sign in with OAuth on their own (docs/oauth.md).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from typing import Final

from smcp_box.admin.client import AdminClient
from smcp_box.seams import JsonObject

CLIENTS: Final = ("vscode", "claude-code", "cursor", "claude-desktop", "json")
#: What the snippet puts where a key goes when no key was given.
KEY_PLACEHOLDER: Final = "${SMCP_BOX_KEY}"
#: Cursor expands environment variables in mcp.json with its own ``${env:NAME}`` syntax.
CURSOR_PLACEHOLDER: Final = "${env:SMCP_BOX_KEY}"


@dataclass(frozen=True)
class Connection:
    """What a client needs to know about one tenant endpoint."""

    #: The tenant's name, used as the server's name in the client.
    name: str
    url: str
    #: The tenant's ``auth``: "none" means no credential is sent.
    auth: str
    #: A real API key, or None for a placeholder.
    key: str | None = None
    #: The local CA's certificate, when the box serves TLS from it; Node-based clients then need
    #: ``NODE_EXTRA_CA_CERTS`` pointing at a copy of it on the client machine.
    ca_file: str | None = None


@dataclass(frozen=True)
class Snippet:
    #: Where the text goes (a file, or a shell).
    where: str
    text: str
    #: Further steps, one per line, for the person at the terminal.
    notes: tuple[str, ...] = ()


def client_snippet(client: str, conn: Connection) -> Snippet:
    if client not in CLIENTS:
        raise ValueError(f"unknown client {client!r}: one of {', '.join(CLIENTS)}")
    notes: list[str] = []
    if conn.auth == "oauth":
        notes.append(
            "This tenant uses OAuth: the client opens a browser to sign in to the box as a user "
            f"granted {conn.name} (smcp-box user add / user grant); the box must be on https "
            "(or reached as localhost)"
        )
    if _sends_key(conn) and conn.key is None:
        notes.append(
            f"Create a key with `smcp-box key create {conn.name}` (or rerun with --new-key)"
            + ("" if client == "vscode" else " and set SMCP_BOX_KEY to it where the client runs")
        )
    if conn.ca_file:
        notes.append(
            f"The box's certificate comes from a local CA: copy {conn.ca_file} to the client "
            "machine and trust it (smcp-box cert printed how), or start the client with "
            "NODE_EXTRA_CA_CERTS=<that copy>."
        )
    if client == "vscode":
        return Snippet(
            ".vscode/mcp.json (or the user mcp.json)", _dump(_vscode(conn)), tuple(notes)
        )
    if client == "claude-code":
        return Snippet("a shell", _claude_code(conn), tuple(notes))
    if client == "cursor":
        return Snippet(
            "~/.cursor/mcp.json (or .cursor/mcp.json)",
            _dump(_generic(conn, CURSOR_PLACEHOLDER)),
            tuple(notes),
        )
    if client == "claude-desktop":
        where = "claude_desktop_config.json (Settings > Developer > Edit Config)"
        return Snippet(where, _dump(_mcp_remote(conn)), tuple(notes))
    return Snippet(
        "any client that takes the common mcpServers JSON", _dump(_generic(conn)), tuple(notes)
    )


def client_config_json(conn: Connection) -> JsonObject:
    """The common ``mcpServers`` object (Cursor's format), as the admin API returns it."""
    return _generic(conn)


def _sends_key(conn: Connection) -> bool:
    """Whether the snippet carries an API key: not for a public tenant, nor for an OAuth-only
    one, whose clients get their tokens by signing in."""
    return conn.auth not in ("none", "oauth")


def _bearer(conn: Connection, placeholder: str = KEY_PLACEHOLDER) -> str:
    return f"Bearer {conn.key if conn.key is not None else placeholder}"


def _generic(conn: Connection, placeholder: str = KEY_PLACEHOLDER) -> JsonObject:
    server: JsonObject = {"type": "http", "url": conn.url}
    if _sends_key(conn):
        server["headers"] = {"Authorization": _bearer(conn, placeholder)}
    return {"mcpServers": {conn.name: server}}


def _vscode(conn: Connection) -> JsonObject:
    input_id = f"smcp-box-{conn.name}-key"
    server: JsonObject = {"type": "http", "url": conn.url}
    config: JsonObject = {"servers": {conn.name: server}}
    if _sends_key(conn):
        server["headers"] = {"Authorization": _bearer(conn, f"${{input:{input_id}}}")}
        if conn.key is None:
            config["inputs"] = [
                {
                    "type": "promptString",
                    "id": input_id,
                    "description": f"smcp-box API key for {conn.name}",
                    "password": True,
                }
            ]
    return config


def _claude_code(conn: Connection) -> str:
    words = ["claude", "mcp", "add", "--transport", "http", conn.name, conn.url]
    line = " ".join(shlex.quote(word) for word in words)
    if not _sends_key(conn):
        return line
    if conn.key is None:
        # Double quotes, so that the shell expands the variable.
        return f'{line} --header "Authorization: Bearer $SMCP_BOX_KEY"'
    return f"{line} --header {shlex.quote(f'Authorization: Bearer {conn.key}')}"


def _mcp_remote(conn: Connection) -> JsonObject:
    # Claude Desktop runs local (stdio) servers only: mcp-remote bridges to HTTP. The header's
    # value travels in an env var because some clients split args on spaces.
    args = ["-y", "mcp-remote", conn.url]
    server: JsonObject = {"command": "npx", "args": args}
    env: dict[str, str] = {}
    if _sends_key(conn):
        args += ["--header", "Authorization:${SMCP_BOX_AUTH}"]
        env["SMCP_BOX_AUTH"] = _bearer(conn, placeholder="<paste the key here>")
    if conn.url.startswith("http://"):
        args.append("--allow-http")
    if conn.ca_file:
        env["NODE_EXTRA_CA_CERTS"] = "<path of the box's ca.crt on this machine>"
    if env:
        server["env"] = env
    return {"mcpServers": {conn.name: server}}


def _dump(config: JsonObject) -> str:
    return json.dumps(config, indent=2)


def add_client_config_parser(parser: argparse.ArgumentParser) -> None:
    """The flags of ``smcp-box client-config`` (the admin-API flags are added by the caller)."""
    parser.add_argument("tenant")
    parser.add_argument("--client", choices=CLIENTS, default="json", help="which client's format")
    parser.add_argument(
        "--new-key", action="store_true", help="create a key for it and put it in the snippet"
    )
    parser.add_argument("--label", default="", help="with --new-key: who or what uses the key")
    parser.add_argument(
        "--ca-file",
        default=None,
        metavar="PATH",
        help="the local CA's ca.crt, when the box's certificate comes from `smcp-box cert`",
    )


async def run_client_config(client: AdminClient, args: argparse.Namespace) -> int:
    tenant = await client.tenant(args.tenant)
    key: str | None = None
    if args.new_key and tenant["auth"] not in ("none", "oauth"):
        key = str((await client.create_key(args.tenant, args.label or args.client))["key"])
    conn = Connection(
        name=str(tenant["name"]),
        url=str(tenant["url"]),
        auth=str(tenant["auth"]),
        key=key,
        ca_file=args.ca_file,
    )
    snippet = client_snippet(args.client, conn)
    if args.json:
        body = {"client": args.client, "where": snippet.where, "text": snippet.text}
        print(json.dumps({**body, "notes": list(snippet.notes)}, indent=2))
        return 0
    # The snippet alone on stdout, so that it can be redirected into the file it belongs in.
    print(f"# for {snippet.where}", file=sys.stderr)
    if key is not None:
        print("# the key in it is shown once: keep this snippet safe", file=sys.stderr)
    for note in snippet.notes:
        print(f"# {note}", file=sys.stderr)
    print(snippet.text)
    return 0
