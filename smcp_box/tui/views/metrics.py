"""Live metrics: a row per tenant (and the total) with a requests trend, and sparklines of the
highlighted row's requests, latency, errors, fuel and memory over the last minute."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, Sparkline, Static

from smcp_box.tui.format import fmt_bytes, fmt_count, fmt_ms, spark_text
from smcp_box.tui.modals import DetailsModal
from smcp_box.tui.views.base import View
from smcp_box.tui.widgets import Row

TOTAL_KEY = "*total"
WINDOW_S = 60
TREND_WIDTH = 12
#: (series name in the API, label, formatter of the latest value)
SPARKS = (
    ("requests", "req/s", fmt_count),
    ("latency_p95_ms", "p95 ms", fmt_ms),
    ("errors", "errors", fmt_count),
    ("fuel", "fuel/s", fmt_count),
    ("memory_bytes", "memory", fmt_bytes),
)


class MetricsView(View):
    TITLE = "Metrics"
    COLUMNS = (
        ("tenant", "Tenant", 14),
        ("rps", "req/s", 6),
        ("p95", "p95 ms", 6),
        ("errors", "Err", 5),
        ("fuel", "fuel/s", 6),
        ("memory", "Mem", 6),
        ("sessions", "Sess", 4),
        ("trend", "Req. 60 s", TREND_WIDTH),
    )
    DEFAULT_CSS = """
    MetricsView LiveTable { height: 1fr; }
    MetricsView #metrics-panel {
        height: auto; border-top: solid $accent; padding: 0 1;
    }
    MetricsView .spark-row { height: 1; }
    MetricsView .spark-label { width: 8; }
    MetricsView .spark-value { width: 8; text-align: right; padding-right: 1; }
    MetricsView Sparkline { width: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._data: dict[str, dict[str, Any]] = {}

    def compose_extra(self) -> ComposeResult:
        with Vertical(id="metrics-panel"):
            yield Static("", id="metrics-summary")
            for name, label, _ in SPARKS:
                with Horizontal(classes="spark-row"):
                    yield Label(label, classes="spark-label")
                    yield Label("", classes="spark-value", id=f"value-{name}")
                    yield Sparkline([], id=f"spark-{name}")

    async def load(self) -> None:
        body = await self.api.metrics(window_s=WINDOW_S)
        total = {"name": "all tenants", **body["total"]}
        self._data = {TOTAL_KEY: total}
        self._data.update({row["name"]: row for row in body["tenants"]})
        rows: list[Row] = []
        for key, row in self._data.items():
            name: str | Text = Text("all tenants", style="bold") if key == TOTAL_KEY else key
            errors = Text(fmt_count(row["error_total"]), style="red" if row["error_total"] else "")
            rows.append(
                (
                    key,
                    [
                        name,
                        fmt_count(row["requests_per_s"]),
                        fmt_ms(row["latency_ms"]["p95"]),
                        errors,
                        fmt_count(row["fuel_per_s"]),
                        fmt_bytes(row["memory_bytes"]),
                        str(row["open_sessions"]),
                        spark_text(row["series"]["requests"], TREND_WIDTH),
                    ],
                )
            )
        self.show_rows(rows)
        self._show_panel()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_panel()

    def _show_panel(self) -> None:
        key = self.selected() or TOTAL_KEY
        row = self._data.get(key)
        if row is None:
            return
        latency = row["latency_ms"]
        errors = ", ".join(f"{kind} {count}" for kind, count in sorted(row["errors"].items()))
        summary = Text.assemble(
            (str(row["name"]), "bold"),
            f"  p50/p95/p99 {fmt_ms(latency['p50'])}/{fmt_ms(latency['p95'])}/"
            f"{fmt_ms(latency['p99'])} ms  warm {row['warm_instances']}"
            f"  streams {row['open_streams']}  kv {fmt_bytes(row['kv_bytes'])}",
            f"\nblobs {fmt_count(row['blobs'])} ({fmt_bytes(row['blob_bytes'])})"
            f"  errors: {errors or 'none'}",
        )
        self.query_one("#metrics-summary", Static).update(summary)
        for name, _, formatter in SPARKS:
            series = [float(value) for value in row["series"][name]]
            self.query_one(f"#spark-{name}", Sparkline).data = series
            # The current second is still filling up; the one before it is complete.
            latest = series[-2] if len(series) > 1 else (series[-1] if series else 0.0)
            self.query_one(f"#value-{name}", Label).update(formatter(latest))

    async def open_selected(self) -> None:
        key = self.selected()
        if key is None or key not in self._data:
            return
        row = {k: v for k, v in self._data[key].items() if k != "series"}
        await self.ask(DetailsModal(f"Metrics of {row['name']} (last {WINDOW_S} s)", row))
