"""``smcp-box store migrate --to DSN``: move a single box's SQLite database into an empty
PostgreSQL database, so that a box moves up to a fleet without losing anything.

The box must be stopped: the command holds the state lock for the whole copy, as ``restore``
does, so the database cannot change under it and no box starts half-way. It refuses a target
that holds any rows (naming the tables), copies every table PostgreSQL has
(:mod:`smcp_box.store.transfer`), then checks what it wrote: the row count of every table on
both sides, the data key against the copied key check (by opening the store there, as a box
would), and every audit chain on the PostgreSQL side. The SQLite file is left as it was: it
stays the way back until the fleet runs on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smcp_box.config import Settings, box_id, read_store_password
from smcp_box.errors import ConfigError, StoreError
from smcp_box.ops.offline import existing_data_key, existing_database, existing_store
from smcp_box.store import statelock
from smcp_box.store.audit import ChainVerification, chain_label
from smcp_box.store.crypto import Crypto
from smcp_box.store.pg import PgDatabase, database_contents, redact_dsn
from smcp_box.store.store import Store
from smcp_box.store.transfer import TransferReport, copy_sqlite_to_postgres, summary_lines


@dataclass(frozen=True)
class MigrateResult:
    target: str
    transfer: TransferReport
    chains: list[ChainVerification]

    @property
    def ok(self) -> bool:
        return self.transfer.counts_equal and all(chain.ok for chain in self.chains)

    def summary(self) -> list[str]:
        lines = [f"Copied into {self.target}:", *summary_lines(self.transfer)]
        for chain in self.chains:
            state = "intact" if chain.ok else f"BROKEN: {chain.verification.message}"
            lines.append(
                f"  audit chain of box {chain_label(chain.box)}: {chain.rows} row(s), {state}"
            )
        if self.ok:
            lines.append(
                "OK: every count matches and every audit chain verifies. Set [store] backend = "
                '"postgres" and dsn, with the same data key, and start the boxes.'
            )
        else:
            lines.append("FAIL: the copy does not match (see above); do not switch to it.")
        return lines


async def run_store_migrate(
    settings: Settings, dsn: str, progress: Callable[[str], None]
) -> MigrateResult:
    """Copy the box's SQLite database into the empty PostgreSQL database at ``dsn`` and check
    the copy; ``progress`` gets a line per table (more for long ones)."""
    if settings.store.backend != "sqlite":
        raise ConfigError(
            "store migrate copies a box's SQLite database; this config has [store] backend = "
            f'"{settings.store.backend}" already'
        )
    database = existing_database(settings)
    key = existing_data_key(settings)
    password = read_store_password(settings)
    target = redact_dsn(dsn)
    with statelock.exclusive(database.parent, role="migrate"):
        # Opening migrates the file to this release's schema and checks the key, as a start
        # would: what is copied is what this release reads.
        async with existing_store(settings):
            pass
        contents = await database_contents(dsn, password=password)
        if contents:
            listed = ", ".join(f"{table} ({rows} rows)" for table, rows in contents.items())
            raise ConfigError(
                f"the PostgreSQL database {target} is not empty: {listed}. store migrate only "
                "fills an empty database (create one: createdb NAME), so it never mixes two "
                "boxes' data or overwrites a fleet's"
            )
        progress(f"copying {database} into {target}")
        db = await PgDatabase.open(dsn, password=password)
        try:
            transfer = await copy_sqlite_to_postgres(database, db, progress)
        except BaseException:
            await db.close()
            raise
        crypto = Crypto(key, encrypt=settings.store.encrypt)
        try:
            # The store's own open: the data key must match the copied key check.
            store = await Store.open_on(db, crypto, box_id=box_id(settings))
        except StoreError as exc:
            raise StoreError(f"The copy in {target} does not open: {exc.message}") from None
        try:
            chains = await store.verify_audit_chains()
        finally:
            await store.close()
    return MigrateResult(target, transfer, chains)
