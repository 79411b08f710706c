"""The sign-in and consent pages: server-rendered HTML, no JavaScript, usable with the keyboard.

Every value shown is escaped; every form posts back to the authorization URL it was served
from (the OAuth parameters stay in its query) with the CSRF token in a hidden field. Fields have
labels, the focus order is the reading order, and each form ends in a visible submit button, so
Tab, typing and Enter are enough. The pages say which client (its name, where it sends the
answer, how it was registered), which tenant and which scopes, because that is what a person
decides on.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Final

from smcp_box.auth.scopes import PROMPTS, RESOURCES, TOOLS

SCOPE_TEXT: Final = {
    TOOLS: "call its tools",
    RESOURCES: "read its resources",
    PROMPTS: "use its prompts",
}
_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}label{display:block;margin-top:.8rem}input{font-size:1rem;padding:.3rem;"
    "width:100%;box-sizing:border-box}button{font-size:1rem;margin:1rem .5rem 0 0;"
    "padding:.4rem 1.2rem}:focus{outline:3px solid #1a5fb4;outline-offset:2px}"
    ".error{color:#a51d2d;font-weight:bold}.note{color:#555;font-size:.9rem}"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · smcp-box</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{_e(title)}</h1>{body}</main></body></html>\n"
    )


def _who(client_name: str, redirect_host: str, source: str, tenant: str) -> str:
    unverified = (
        '<p class="note">This app registered itself; its name is not verified. Go on only if '
        "you started this sign-in from it.</p>"
        if source == "dynamic"
        else ""
    )
    return (
        f"<p><strong>{_e(client_name)}</strong> (answer goes to <code>{_e(redirect_host)}</code>)"
        f" wants to use the tenant <strong>{_e(tenant)}</strong> on this box.</p>{unverified}"
    )


def login_page(
    *,
    action: str,
    csrf: str,
    client_name: str,
    redirect_host: str,
    source: str,
    tenant: str,
    error: str | None = None,
    username: str = "",
) -> str:
    problem = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    body = (
        f"{_who(client_name, redirect_host, source, tenant)}{problem}"
        f'<form method="post" action="{_e(action)}">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<input type="hidden" name="step" value="login">'
        '<label for="username">User name</label>'
        f'<input id="username" name="username" autocomplete="username" required autofocus'
        f' value="{_e(username)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password"'
        " required>"
        '<button type="submit">Sign in</button></form>'
    )
    return page("Sign in", body)


def consent_page(
    *,
    action: str,
    csrf: str,
    username: str,
    client_name: str,
    redirect_host: str,
    source: str,
    tenant: str,
    scopes: Iterable[str],
) -> str:
    items = "".join(
        f"<li><code>{_e(scope)}</code>: {_e(SCOPE_TEXT.get(scope, scope))}</li>" for scope in scopes
    )
    body = (
        f"<p>Signed in as <strong>{_e(username)}</strong>.</p>"
        f"{_who(client_name, redirect_host, source, tenant)}"
        f"<p>It asks to:</p><ul>{items}</ul>"
        f'<form method="post" action="{_e(action)}">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<button type="submit" name="step" value="approve">Allow</button>'
        '<button type="submit" name="step" value="deny">Deny</button>'
        '<button type="submit" name="step" value="logout">Sign in as someone else</button>'
        "</form>"
    )
    return page("Allow access?", body)


def no_access_page(*, action: str, csrf: str, username: str, tenant: str, client_name: str) -> str:
    body = (
        f"<p>Signed in as <strong>{_e(username)}</strong>, who has no access to the tenant "
        f"<strong>{_e(tenant)}</strong> with the scopes <strong>{_e(client_name)}</strong> asks "
        "for. An admin can grant it: <code>smcp-box user grant</code>.</p>"
        f'<form method="post" action="{_e(action)}">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<button type="submit" name="step" value="deny">Return to the app</button>'
        '<button type="submit" name="step" value="logout">Sign in as someone else</button>'
        "</form>"
    )
    return page("No access", body)


def error_page(title: str, message: str) -> str:
    return page(title, f'<p class="error" role="alert">{_e(message)}</p>')
