"""Rate limits every worker of a server shares: token buckets in one SQLite file, and generation slots.

Gunicorn's workers are separate processes, so counters kept in memory would let N workers allow N times a
limit. The buckets live in ``<home>/run/ratelimits.sqlite`` (WAL, one short transaction per request, no
fsync: losing counters in a crash only refills buckets), or with ``CRITIC_DATABASE_URL`` in PostgreSQL, shared
by every node (asynchronous commits, for the same reason). A generation slot is an ``flock`` on one of
MAX_GENERATIONS files: the kernel frees it when the holder ends, crashed or not, so that cap is per node.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from api.config import Rate
from critic.sql import is_url, open_database, redact

log = logging.getLogger("critic.api")
DB_FILE = "ratelimits.sqlite"
#: Rows older than this are full buckets again (no period is longer), so they are deleted now and then.
FORGET_AFTER_S = 3600.0
PRUNE_EVERY = 1000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, "
    "updated DOUBLE PRECISION NOT NULL)"
)
_WRITE = "buckets"


@dataclass(frozen=True)
class Charge:
    """One token to take from the bucket ``name`` of shape ``rate``."""

    name: str
    rate: Rate

    @property
    def row(self) -> str:
        # The shape is part of the row's name: a changed setting starts fresh buckets instead of misreading old ones.
        return f"{self.name}@{self.rate.capacity}/{self.rate.period:g}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    name: str  # the tightest bucket: the one that refused, else the one closest to empty
    rate: Rate
    remaining: int  # tokens left in it
    retry_after: int  # whole seconds until every bucket has a token again; 0 when allowed


def refill(tokens: float, updated: float, now: float, rate: Rate) -> float:
    """Tokens in a bucket last seen at ``updated`` holding ``tokens``.

    Example:
        >>> refill(0.0, 0.0, 30.0, Rate(2, 60.0))
        1.0
    """
    return min(float(rate.capacity), tokens + max(0.0, now - updated) * rate.per_second)


def client_address(remote: str | None) -> str:
    """The address a client is limited by: an IPv4 address, or an IPv6 client's /64 network.

    Example:
        >>> client_address("2001:db8:1:2:aaaa::1"), client_address("::ffff:10.0.0.1")
        ('2001:db8:1:2::/64', '10.0.0.1')
    """
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return str(remote or "unknown")[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One subscriber gets a whole /64; counting its addresses apart would give it 2^64 buckets.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimiter:
    """Token buckets in an SQLite file (or PostgreSQL, by URL); ``take`` spends one token from each bucket of a
    request, or none.

    Example:
        >>> import tempfile
        >>> limits = RateLimiter(Path(tempfile.mkdtemp()) / DB_FILE, clock=lambda: 0.0)
        >>> [limits.take([Charge("ip:10.0.0.1", Rate(2, 60.0))]).allowed for _ in range(3)]
        [True, True, False]
    """

    def __init__(self, location: str | Path, clock: Callable[[], float] = time.time):
        self.clock = clock  # wall time: the workers share the rows, not a monotonic clock
        self._takes = 0
        self._warned = 0.0
        if not is_url(location):
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        self.db = open_database(location, timeout=5, durable=False)
        with self.db.transaction(lock=_WRITE) as db:
            db.execute(_SCHEMA)

    def take(self, charges: Sequence[Charge]) -> Decision:
        """One token from every bucket in ``charges`` if each has one; otherwise nothing is spent.

        A counter file that cannot be written (a full disk) lets the request through: limits are a guard
        for the service, not a reason to refuse it.
        """
        try:
            return self._take(charges)
        except self.db.errors as exc:
            now = time.monotonic()
            if now - self._warned > 60:
                self._warned = now
                log.warning("rate limits not enforced: %s unusable (%s)", redact(self.db.location), exc)
            tightest = min(charges, key=lambda c: c.rate.capacity)
            return Decision(True, tightest.name, tightest.rate, tightest.rate.capacity, 0)

    def _take(self, charges: Sequence[Charge]) -> Decision:
        now = self.clock()
        rows = [charge.row for charge in charges]
        with self.db.transaction(lock=_WRITE, durable=False) as db:
            marks = ",".join("?" * len(rows))
            found = db.execute(f"SELECT name, tokens, updated FROM buckets WHERE name IN ({marks})", rows)
            stored = {n: (t, u) for n, t, u in found}
            tokens = [refill(*stored.get(c.row, (c.rate.capacity, now)), now, c.rate) for c in charges]
            allowed = all(t >= 1.0 for t in tokens)
            if allowed:
                tokens = [t - 1.0 for t in tokens]
                db.executemany(
                    "INSERT INTO buckets (name, tokens, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                    [(c.row, t, now) for c, t in zip(charges, tokens, strict=True)],
                )
            self._takes += 1
            if self._takes % PRUNE_EVERY == 0:
                db.execute("DELETE FROM buckets WHERE updated < ?", (now - FORGET_AFTER_S,))
        # Report the bucket that refused, else the one closest to empty.
        tight = min(range(len(charges)), key=lambda n: (tokens[n] >= 1.0, tokens[n] / charges[n].rate.capacity))
        waits = [(1.0 - t) / c.rate.per_second for c, t in zip(charges, tokens, strict=True) if t < 1.0]
        retry = 0 if allowed else max(1, math.ceil(max(waits)))
        chosen = charges[tight]
        return Decision(allowed, chosen.name, chosen.rate, max(0, int(tokens[tight])), retry)


class GenerationSlots:
    """At most ``size`` holders at once across every process using ``directory``.

    Example:
        >>> import tempfile
        >>> slots = GenerationSlots(Path(tempfile.mkdtemp()), 1)
        >>> first = slots.acquire(); second = slots.acquire()
        >>> first is not None, second is None
        (True, True)
        >>> slots.release(first)
    """

    def __init__(self, directory: str | Path, size: int):
        self.directory = Path(directory)
        self.size = size
        self.directory.mkdir(parents=True, exist_ok=True)

    def acquire(self) -> int | None:
        """A held slot (an open, locked file descriptor) or None when all are taken; never waits."""
        for n in range(self.size):
            # Each open() is its own open file description, so threads of one process exclude each other too.
            fd = os.open(self.directory / f"generation-{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None

    def release(self, slot: int) -> None:
        os.close(slot)  # closing the last descriptor of the description drops its lock
