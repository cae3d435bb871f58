"""What one app instance holds besides Flask: its Service (loaded once per worker), keys and rate limits."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g

from api.catalog import Catalog
from api.config import parse_rate
from api.keys import KeyStore, key_store
from api.problems import ApiProblem
from api.ratelimit import TokenBuckets
from critic.home import Home
from critic.service import Service
from critic.writing import Writing

log = logging.getLogger("critic.api")
RETRY_WHILE_LOADING_S = 5


class ServiceSlot:
    """The build's Service, loaded in a background thread (or given ready-made, as tests do).

    /healthz answers while it loads and /readyz says whether it is done. A request that needs the model
    waits up to ``wait_s`` for the load (a worker that restarted holds its share of the traffic a moment
    rather than failing it), then gets a 503 with Retry-After.
    """

    def __init__(self, home: Home, service: Service | None = None, wait_s: float = 0.0):
        self.home = home
        self.wait_s = wait_s
        self._service = service
        self._failure: str | None = None
        self._done = threading.Event()
        if service is not None:
            self._done.set()

    def start(self, background: bool) -> None:
        if self._done.is_set():
            return
        if background:
            threading.Thread(target=self._load, name="critic-load", daemon=True).start()
        else:
            self._load()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading finished (or failed); True when the service is ready."""
        self._done.wait(timeout)
        return self._service is not None

    def _load(self) -> None:
        try:
            service = Service.load(self.home)
            service.encode_text("warm up")  # load the sentence model now, not on the first text query
            self._service = service
            log.info("service ready: %d artworks from %s", service.store.count(), self.home.root)
        except Exception as exc:  # the process stays up to say why it is not ready
            self._failure = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.exception("the service failed to load from %s", self.home.root)
        finally:
            self._done.set()

    @property
    def status(self) -> str:
        if self._service is not None:
            return "ready"
        return "failed" if self._failure else "loading"

    def get(self) -> Service:
        if self._service is None:
            self._done.wait(self.wait_s)
        if self._service is not None:
            return self._service
        if self._failure:
            raise ApiProblem(
                503, "Service Unavailable", "the model and index failed to load; see the server log", kind="not-ready"
            )
        raise ApiProblem(
            503,
            "Service Unavailable",
            "the model and index are still loading",
            kind="not-ready",
            headers={"Retry-After": str(RETRY_WHILE_LOADING_S)},
        )


@dataclass
class Runtime:
    slot: ServiceSlot
    keys: KeyStore
    anonymous_limits: TokenBuckets | None
    key_limits: TokenBuckets | None
    _catalog: Catalog | None = None
    _writing: Writing | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def catalog(self, service: Service) -> Catalog:
        """The listing view of ``service``'s store, made on first use."""
        with self._lock:
            if self._catalog is None:
                self._catalog = Catalog(service.store)
            return self._catalog

    def writing(self, service: Service) -> Writing:
        """The writer for ``service``, set up on first use (it builds a lexicon or loads the decoder)."""
        with self._lock:
            if self._writing is None:
                self._writing = Writing(service)
            return self._writing

    @classmethod
    def create(cls, settings: dict[str, Any], service: Service | None) -> Runtime:
        home = Home.resolve(settings["HOME"]) if service is None else service.home
        anonymous, keyed = parse_rate(settings["RATE_LIMIT"]), parse_rate(settings["KEY_RATE_LIMIT"])
        return cls(
            slot=ServiceSlot(home, service, wait_s=settings["LOAD_WAIT_S"]),
            keys=key_store(home),
            anonymous_limits=TokenBuckets(anonymous) if anonymous else None,
            key_limits=TokenBuckets(keyed) if keyed else None,
        )


def runtime() -> Runtime:
    return current_app.extensions["critic"]


def current_service() -> Service:
    """The loaded Service, caught up (once per request) with writes other workers committed."""
    service = runtime().slot.get()
    if not g.get("service_refreshed"):
        service.refresh()
        g.service_refreshed = True
    return service
