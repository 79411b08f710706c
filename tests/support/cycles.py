"""What the cyclic garbage collector finds: objects that reference counting did not free."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def garbage_left() -> Iterator[Counter[str]]:
    """Counts by type, when the block ends, what the objects made inside it left in cycles.

    The collector runs once first (so older garbage is not counted) and once at the end with
    ``gc.DEBUG_SAVEALL``, which keeps what it would have freed in ``gc.garbage`` to be counted.
    """
    counts: Counter[str] = Counter()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield counts
        gc.collect()
        counts.update(type(thing).__qualname__ for thing in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
