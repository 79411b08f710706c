"""The vetting verdict on one tenant's tools: pin check plus scan, for the loader and the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .pins import PIN_KEY, pin_problem, tool_names, tools_fingerprint
from .scan import Finding, scan_tools

PinStatus = Literal["match", "mismatch", "unpinned"]


@dataclass(frozen=True)
class VetReport:
    """What vetting found. ``ok`` is the verdict: pinned, matching and free of blocking findings."""

    tenant: str
    #: The tools' fingerprint now: the value to pin once the admin accepts them.
    fingerprint: str
    #: The pin from tenant.toml, as given (None when there is none).
    pinned: str | None
    pin_status: PinStatus
    #: The admin-facing reason when ``pin_status`` is not "match".
    pin_message: str | None
    tool_names: tuple[str, ...]
    findings: tuple[Finding, ...]
    #: The key of the publisher whose signature was checked (None: unsigned or not checked).
    publisher: str | None = None
    #: Why an unsigned module was accepted anyway, when it was.
    signature_warning: str | None = None
    #: tenant.toml ``secrets``: names the box must have values for (``smcp-box secret set``).
    required_secrets: tuple[str, ...] = ()
    #: Besides tools, what approvals hold the module to: kind -> how many items it lists.
    others_covered: tuple[tuple[str, int], ...] = ()
    #: Kinds the module declares but approvals cannot hold ("resources": its resources/list
    #: needs kv or failed while vetting; docs/vetting.md).
    not_covered: tuple[str, ...] = ()

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "block")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warn")

    @property
    def ok(self) -> bool:
        # Unpinned tools are served (with a warning naming the pin to add), so that a tenant can
        # be tried before it is pinned; tools that changed since they were pinned are not.
        return self.pin_status != "mismatch" and not self.blocking

    @property
    def summary(self) -> str:
        """One paragraph for a human: the verdict, why, and what to do next."""
        count = len(self.tool_names)
        head = f"Tenant {self.tenant!r} lists {count} tool{'s' if count != 1 else ''}"
        blocking, warnings = len(self.blocking), len(self.warnings)
        scan = (
            f"the scan found {blocking} blocking finding{'s' if blocking != 1 else ''} and "
            f"{warnings} warning{'s' if warnings != 1 else ''}"
        )
        if self.pin_status == "match":
            pin = "the definitions match the pinned fingerprint"
        elif self.pin_status == "unpinned":
            pin = "the definitions are not pinned yet"
        else:
            pin = "the definitions changed since they were pinned"
        sentences = [f"{head}; {pin}, and {scan}."]
        if self.ok:
            sentences.append("It passes vetting.")
            if self.pin_status == "unpinned":
                sentences.append(
                    f"Pin the definitions once they are reviewed: set {PIN_KEY} = "
                    f'"{self.fingerprint}" in tenant.toml.'
                )
            if warnings:
                sentences.append("Read the warnings; they do not stop the tenant from loading.")
        else:
            sentences.append("It fails vetting and will not be served.")
            if blocking:
                # The summary may be all an admin sees (it becomes the rejection message), so it
                # names one finding to start from.
                first = self.blocking[0]
                sentences.append(
                    f"First blocking finding: tool {first.tool!r}, {first.field}, rule "
                    f"{first.rule}: {first.excerpt!r}. Blocking findings mean the tool text hides "
                    "characters or instructs the model against the user; the module must be "
                    "fixed, not re-pinned."
                )
            elif self.pin_status != "match":
                if self.pin_status == "mismatch":
                    sentences.append(
                        f"Pinned {PIN_KEY} is {self.pinned}; the tools now fingerprint as "
                        f"{self.fingerprint}."
                    )
                sentences.append(
                    f"If the tools and findings below are acceptable, set {PIN_KEY} = "
                    f'"{self.fingerprint}" in tenant.toml.'
                )
        return " ".join(sentences)


def vet_tools(
    tenant: str,
    tools: Sequence[Mapping[str, Any]],
    pinned: str | None,
    pinned_names: Sequence[str] | None = None,
) -> VetReport:
    """Check ``tools`` (a module's ``tools/list`` result) against the pin and scan them."""
    message = pin_problem(tenant, pinned, tools, pinned_names)
    status: PinStatus = "match" if message is None else "unpinned" if pinned is None else "mismatch"
    return VetReport(
        tenant=tenant,
        fingerprint=tools_fingerprint(tools),
        pinned=pinned,
        pin_status=status,
        pin_message=message,
        tool_names=tuple(tool_names(tools)),
        findings=tuple(scan_tools(tools)),
    )


def format_report(report: VetReport) -> str:
    """Plain text for ``smcp-box vet``: verdict, pin, one line per finding, summary."""
    pin_line = {
        "match": f"{PIN_KEY} = {report.fingerprint}  (matches the pin)",
        "unpinned": f"{PIN_KEY} = {report.fingerprint}  (not pinned yet)",
        "mismatch": f"{PIN_KEY} = {report.fingerprint}  (pinned: {report.pinned}; MISMATCH)",
    }[report.pin_status]
    lines = [
        f"tenant {report.tenant}: {'OK' if report.ok else 'REJECTED'}",
        f"tools ({len(report.tool_names)}): {', '.join(report.tool_names) or '(none)'}",
        pin_line,
    ]
    if report.publisher is not None:
        lines.append(f"publisher: {report.publisher} (signature valid, trusted)")
    elif report.signature_warning is not None:
        lines.append(f"publisher: none (WARNING: {report.signature_warning})")
    if report.required_secrets:
        lines.append(
            f"secrets required: {', '.join(report.required_secrets)} (a box serves the tenant "
            "without them but reports them missing; smcp-box secret list shows what is set)"
        )
    if report.others_covered:
        held = ", ".join(f"{kind} ({count})" for kind, count in report.others_covered)
        lines.append(f"approvals also hold: {held}")
    if report.not_covered:
        lines.append(
            f"not covered by approvals: {', '.join(report.not_covered)} (resources/list "
            "could not be had without kv; the module's own list is always served)"
        )
    if report.findings:
        lines.append("findings:")
        # Blocking findings first: they are what the admin must act on.
        ordered = sorted(report.findings, key=lambda f: f.severity != "block")
        lines.extend(
            f"  {f.severity.upper():5} {f.tool} {f.field} [{f.rule}]: {f.excerpt}" for f in ordered
        )
    else:
        lines.append("findings: none")
    lines.append("")
    lines.append(report.summary)
    return "\n".join(lines) + "\n"


__all__ = ["PinStatus", "VetReport", "format_report", "vet_tools"]
