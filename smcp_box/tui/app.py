"""``AdminTui``: the Textual admin app. It talks only to the admin API (never the database).

Screens are tabs: 1 Tenants, 2 Keys, 3 Sessions, 4 Audit, 5 Metrics, 6 Users, 7 Fleet. Every
second the app asks the box for its status and the visible tab's data; when the box does not
answer the status line turns into a "STALE" banner and the last data stays on screen.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from smcp_box.errors import AdminRequestFailed, AdminUnavailable, BoxError
from smcp_box.tui.api import AdminApi
from smcp_box.tui.format import fmt_clock, fmt_duration
from smcp_box.tui.modals import HelpModal
from smcp_box.tui.views.audit import AuditView
from smcp_box.tui.views.base import View
from smcp_box.tui.views.fleet import FleetView
from smcp_box.tui.views.keys import KeysView
from smcp_box.tui.views.metrics import MetricsView
from smcp_box.tui.views.sessions import SessionsView
from smcp_box.tui.views.tenants import FAILED_PREFIX, TenantsView
from smcp_box.tui.views.users import UsersView
from smcp_box.tui.widgets import StatusLine

VIEWS: tuple[tuple[str, type[View]], ...] = (
    ("tenants", TenantsView),
    ("keys", KeysView),
    ("sessions", SessionsView),
    ("audit", AuditView),
    ("metrics", MetricsView),
    ("users", UsersView),
    ("fleet", FleetView),
)


class AdminTui(App[None]):
    TITLE = "smcp-box"
    CSS = """
    Screen { layout: vertical; }
    TabbedContent { height: 1fr; }
    TabPane { padding: 0; }
    """
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        *(
            Binding(str(number), f"show('{view_id}')", cls.TITLE, show=False)
            for number, (view_id, cls) in enumerate(VIEWS, start=1)
        ),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        api: AdminApi,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        poll_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.api = api
        self.read_only = read_only
        self._clock = clock
        self._poll_interval_s = poll_interval_s
        self._polling = False
        self._last_ok: float | None = None
        self.stale = False
        self._main: Screen[Any]  # set in on_mount

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with TabbedContent(initial="tenants"):
            for number, (view_id, cls) in enumerate(VIEWS, start=1):
                with TabPane(f"{number} {cls.TITLE}", id=view_id):
                    yield cls(id=f"view-{view_id}")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # App.query_one searches the *current* screen, which is a modal while one is open; the
        # views and the status line live on this one.
        self._main = self.screen
        self.active_view.focus_main()
        self.set_interval(self._poll_interval_s, self._tick)
        self._tick()

    async def on_unmount(self) -> None:
        await self.api.aclose()

    # --- views -----------------------------------------------------------------------------

    @property
    def active_view(self) -> View:
        active = self._main.query_one(TabbedContent).active or "tenants"
        return self.view(active)

    def view(self, view_id: str) -> View:
        return self._main.query_one(f"#view-{view_id}", View)

    @property
    def current_tenant(self) -> str | None:
        """The tenant highlighted on the Tenants view, as a default for other views' forms."""
        key = self.view("tenants").selected()
        return None if key is None or key.startswith(FAILED_PREFIX) else key

    def action_show(self, view_id: str) -> None:
        self._main.query_one(TabbedContent).active = view_id
        self.view(view_id).focus_main()

    def on_tabbed_content_tab_activated(self, _: TabbedContent.TabActivated) -> None:
        self.active_view.focus_main()
        self._tick()

    def action_filter(self) -> None:
        self.active_view.start_filter()

    def action_refresh(self) -> None:
        self._tick()

    def action_help(self) -> None:
        self.push_screen(HelpModal(self.help_text()))

    # --- polling and the stale indicator ---------------------------------------------------

    def _tick(self) -> None:
        # One poll at a time: a slow box gets fewer requests, never a pile of them.
        if not self._polling:
            self.run_worker(self.refresh_now(), group="poll")

    async def refresh_now(self) -> None:
        self._polling = True
        try:
            await self._refresh()
        except NoMatches:
            # Only while the app shuts down: its widgets go before its last workers do.
            pass
        finally:
            self._polling = False

    async def _refresh(self) -> None:
        try:
            status = await self.api.status()
            await self.active_view.load()
        except AdminUnavailable as exc:
            self._mark_stale(exc.message)
        except AdminRequestFailed as exc:
            self._mark_stale(f"the box answered {exc.status}: {exc.message}")
        else:
            self.stale = False
            self._last_ok = self._clock()
            self._main.query_one(StatusLine).show_live(self._summary(status))

    def _mark_stale(self, reason: str) -> None:
        self.stale = True
        since = fmt_clock(self._last_ok) if self._last_ok else None
        self._main.query_one(StatusLine).show_stale(reason, since)

    def _summary(self, status: dict[str, Any]) -> str:
        tenants = status["tenants"]
        failed = f", {tenants['failed']} failed" if tenants["failed"] else ""
        sessions = status["open_sessions"]
        parts = [
            fmt_clock(self._clock()),
            f"smcp-box {status['version']}",
            f"up {fmt_duration(float(status['uptime_s']))}",
            f"{tenants['loaded']} tenants{failed}",
            f"{sessions} session{'' if sessions == 1 else 's'}",
        ]
        if self.read_only:
            parts.append("READ-ONLY")
        return " · ".join(parts)

    # --- verbs -----------------------------------------------------------------------------

    def run_verb(self, verb: Callable[[], Awaitable[None]]) -> None:
        self.run_worker(self._guarded(verb), group="verbs")

    async def _guarded(self, verb: Callable[[], Awaitable[None]]) -> None:
        try:
            await verb()
        except AdminUnavailable as exc:
            self._mark_stale(exc.message)
            self.notify(exc.message, title="Box not answering", severity="error")
        except BoxError as exc:
            self.notify(exc.message, title="Not done", severity="error", timeout=8)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for number, (view_id, cls) in enumerate(VIEWS, start=1):
            yield SystemCommand(
                f"Go to {cls.TITLE}",
                f"Show the {cls.TITLE} screen (key {number})",
                partial(self.action_show, view_id),
            )
            for binding in view_verbs(cls):
                if self.read_only and binding.action in cls.MUTATING:
                    continue
                yield SystemCommand(
                    f"{cls.TITLE}: {binding.description}",
                    f"On the highlighted row of {cls.TITLE} (key {binding.key})",
                    partial(self._palette_verb, view_id, binding.action),
                )
        yield SystemCommand("Refresh", "Ask the box for fresh data now (key r)", self._tick)
        yield SystemCommand("Filter rows", "Filter the current screen (key /)", self.action_filter)
        yield SystemCommand("Help", "Show every key (key ?)", self.action_help)

    async def _palette_verb(self, view_id: str, action: str) -> None:
        self.action_show(view_id)
        await self.run_action(action, self.view(view_id))

    def help_text(self) -> Text:
        text = Text()
        text.append("Everywhere\n", style="bold underline")
        rows = [
            (f"1-{len(VIEWS)}", "switch screen (or click a tab)"),
            ("?", "this help"),
            ("/", "filter the rows of the screen; esc clears"),
            ("r", "refresh now (the screen also refreshes every second)"),
            ("enter", "details of the highlighted row"),
            ("ctrl+p", "command palette: every action by name"),
            ("q", "quit"),
        ]
        for key, what in rows:
            text.append(f"  {key:<8}", style="bold")
            text.append(f"{what}\n")
        for _, cls in VIEWS:
            bindings = view_verbs(cls)
            if not bindings:
                continue
            text.append(f"\n{cls.TITLE}\n", style="bold underline")
            for binding in bindings:
                off = self.read_only and binding.action in cls.MUTATING
                text.append(f"  {binding.key:<8}", style="bold")
                text.append(binding.description + (" (off: read-only)" if off else "") + "\n")
        text.append(
            "\nThe same key is the same verb everywhere: n new, d delete/revoke/end, "
            "e enable/disable, l limits, m reload module, f follow, g grant.\n"
            "Destructive actions ask first, with Cancel focused.",
            style="italic",
        )
        return text


def view_verbs(cls: type[View]) -> list[Binding]:
    """A view's verbs for help and the command palette: every key it binds, those the footer
    hides for want of room (``show=False``) included."""
    return [b for b in cls.BINDINGS if isinstance(b, Binding) and b.description]
