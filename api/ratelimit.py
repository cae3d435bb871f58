"""Token-bucket rate limits per client, in memory (each server worker keeps its own buckets)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from api.config import Rate


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int  # whole seconds until a token is back; 0 when allowed


class TokenBuckets:
    """A bucket of ``rate.capacity`` tokens per client, refilled evenly over ``rate.period`` seconds.

    Only the ``max_clients`` most recently seen clients are remembered; a forgotten one starts full again,
    which is what its bucket would be after a quiet while anyway.

    Example:
        >>> buckets = TokenBuckets(Rate(2, 60.0), clock=lambda: 0.0)
        >>> [buckets.take("10.0.0.1").allowed for _ in range(3)]
        [True, True, False]
        >>> buckets.take("10.0.0.1").retry_after
        30
    """

    def __init__(self, rate: Rate, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> Decision:
        """Spend one token of ``client``'s bucket if there is one."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop(client, None) or _Bucket(float(self.rate.capacity), now)
            self._buckets[client] = bucket  # most recently seen last
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            bucket.tokens = min(self.rate.capacity, bucket.tokens + (now - bucket.updated) * self.rate.per_second)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return Decision(True, int(bucket.tokens), 0)
            wait = (1.0 - bucket.tokens) / self.rate.per_second
            return Decision(False, 0, max(1, math.ceil(wait)))
