"""Following the change feed: a background thread that keeps one process's index replica in step with the
writes other nodes commit to a shared (PostgreSQL) store.

It sleeps on LISTEN and applies the feed (``Service.refresh``) as soon as a commit announces itself; when the
listening connection is down it polls every ``POLL_S`` instead, so a write committed anywhere is searchable here
within about POLL_S even without notices. Requests still refresh before answering (api.runtime), so a node
never answers from behind a change it could see; the follower spares the first request after a burst of
remote writes the work of indexing them, and keeps an idle node current.
"""

from __future__ import annotations

import logging
import threading
import time

from critic.service import Service

log = logging.getLogger("critic.follow")
#: Longest wait between two looks at the feed: a lost notice, or no listener at all, costs at most this.
POLL_S = 0.5
#: How often a listener that keeps failing is reported in the log.
WARN_EVERY_S = 60.0


class Follower:
    """Applies ``service``'s store changes as they are committed, until ``stop``.

    Example:
        >>> follower = Follower(service).start()      # doctest: +SKIP
        >>> follower.stop()                           # doctest: +SKIP
    """

    def __init__(self, service: Service, poll_s: float = POLL_S):
        self.service = service
        self.poll_s = poll_s
        self.listener = service.store.change_listener()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="critic-follow", daemon=True)
        self._warned = 0.0

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (at once: a notice wakes the listener; other nodes' followers just look once more)."""
        self._stopped.set()
        try:
            self.service.store.announce()
        except self.service.store.db.errors:
            pass  # nobody can be listening without the database: the thread wakes after its poll
        self._thread.join(self.poll_s + 10)

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                try:
                    self.listener.wait(self.poll_s)
                except self.service.store.db.errors as exc:
                    self._warn(f"not listening for changes ({exc}); polling every {self.poll_s} s")
                    self._stopped.wait(self.poll_s)
                try:
                    self.service.refresh()
                except self.service.store.db.errors as exc:  # the database is away: serve what is indexed
                    self._warn(f"change feed unreadable ({exc}); retrying")
        finally:
            self.listener.close()

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned > WARN_EVERY_S:
            self._warned = now
            log.warning("%s", message)
