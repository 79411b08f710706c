"""``smcp-box blob list|put|get|delete|usage``: tenants' blobs, through the admin API.

``put`` and ``get`` stream: the file is read, and the download written, a part at a time.
Transfers of :data:`PROGRESS_MIN_BYTES` or more report progress on standard error (``get``
without ``-o`` writes the blob itself to standard output, which stays clean).
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

from smcp_box.admin.client import AdminClient, Progress
from smcp_box.errors import BoxError

Leaf = Callable[..., argparse.ArgumentParser]
Emit = Callable[[argparse.Namespace, Any, str], int]

PROGRESS_MIN_BYTES: Final = 4 * 1024 * 1024
_MIB: Final = 1024 * 1024


def size_text(size: int) -> str:
    if size >= _MIB:
        return f"{size / _MIB:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} B"


def progress_printer(what: str, total: int | None) -> Progress | None:
    """A progress callback printing to stderr, or None for small transfers."""
    if total is not None and total < PROGRESS_MIN_BYTES:
        return None
    last = [-1]

    def show(done: int, known: int | None) -> None:
        whole = known if known else total
        if whole is None or whole < PROGRESS_MIN_BYTES:
            return
        percent = done * 100 // whole if whole else 100
        if percent // 10 != last[0] // 10 or done == whole:
            last[0] = percent
            print(f"{what}: {size_text(done)} of {size_text(whole)} ({percent}%)", file=sys.stderr)

    return show


def register(commands: Any, leaf: Leaf, emit: Emit) -> None:
    """Add ``blob`` and its actions; ``leaf`` and ``emit`` are cli_commands' own helpers."""

    async def listing(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.blobs(args.tenant, args.prefix)
        lines = [
            f"{b['name']}  {size_text(int(b['size']))}  {b['contentType']}  {b['sha256'][:12]}"
            for b in body["blobs"]
        ]
        usage = body["usage"]
        lines.append(
            f"{usage['blobs']} blob(s), {size_text(int(usage['bytes']))} of "
            f"{size_text(int(body['quotas']['blob_max_total_bytes']))}"
        )
        return emit(args, body, "\n".join(lines))

    async def put(client: AdminClient, args: argparse.Namespace) -> int:
        path: Path = args.file.expanduser()
        content_type = args.type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            source: BinaryIO = path.open("rb")
        except OSError as exc:
            raise BoxError(f"cannot read {path}: {exc.strerror}") from None
        with source:
            total = os.fstat(source.fileno()).st_size
            progress = progress_printer(f"put {args.name}", total)
            body = await client.put_blob(args.tenant, args.name, source, content_type, progress)
        return emit(
            args,
            body,
            f"stored {args.tenant}:{body['name']} ({size_text(int(body['size']))}, "
            f"{body['contentType']}, sha256 {body['sha256']})",
        )

    async def get(client: AdminClient, args: argparse.Namespace) -> int:
        if args.output is None:
            sink = sys.stdout.buffer
            await client.get_blob(args.tenant, args.name, sink, progress_printer("get", None))
            sink.flush()
            return 0
        out: Path = args.output.expanduser()
        partial = out.with_name(f".{out.name}.partial")
        try:
            with partial.open("wb") as sink_file:
                body = await client.get_blob(
                    args.tenant, args.name, sink_file, progress_printer(f"get {args.name}", None)
                )
            partial.replace(out)
        except OSError as exc:
            raise BoxError(f"cannot write {out}: {exc.strerror}") from None
        finally:
            partial.unlink(missing_ok=True)
        print(
            f"wrote {out} ({size_text(int(body['size']))}, sha256 {body['sha256']})",
            file=sys.stderr,
        )
        return 0

    async def delete(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.delete_blob(args.tenant, args.name)
        return emit(args, body, f"deleted {args.tenant}:{args.name}")

    async def usage(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.blob_usage()
        lines = [
            f"{t['tenant']}: {t['blobs']} of {t['quotas']['blob_max_count']} blobs, "
            f"{size_text(int(t['bytes']))} of {size_text(int(t['quotas']['blob_max_total_bytes']))}"
            for t in body["tenants"]
        ]
        return emit(args, body, "\n".join(lines) or "no tenants")

    blob = commands.add_parser("blob", help="tenants' blobs: list, put, get, delete, usage")
    actions = blob.add_subparsers(dest="blob_command", required=True, metavar="ACTION")
    parser = leaf(actions, "list", listing, "list a tenant's blobs (optionally by name prefix)")
    parser.add_argument("tenant")
    parser.add_argument("prefix", nargs="?", default=None)
    parser = leaf(actions, "put", put, "store a file as a tenant's blob (replacing one)")
    parser.add_argument("tenant")
    parser.add_argument("name", help="blob name, a path like reports/2026-12.pdf")
    parser.add_argument("file", type=Path)
    parser.add_argument("--type", default=None, help="MIME type (default: guessed from FILE)")
    parser = leaf(actions, "get", get, "write a blob to a file or standard output", json_flag=False)
    parser.add_argument("tenant")
    parser.add_argument("name")
    parser.add_argument("-o", "--output", type=Path, default=None, help="file to write")
    parser = leaf(actions, "delete", delete, "delete a blob")
    parser.add_argument("tenant")
    parser.add_argument("name")
    leaf(actions, "usage", usage, "blobs and bytes per tenant, against their quotas")
