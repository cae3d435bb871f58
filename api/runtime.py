"""What one app instance holds besides Flask: its Service (loaded once per worker), keys and rate limits."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, g

from api.catalog import Catalog
from api.config import Rate, parse_rate
from api.problems import ApiProblem
from api.ratelimit import DB_FILE, GenerationSlots, RateLimiter
from critic.follow import Follower
from critic.home import Home, database_url
from critic.keys import KeyStore, key_store
from critic.service import Service

log = logging.getLogger("critic.api")
#: The fields whose values the catalog counts (the demo gallery's filters).
FACET_FIELDS = ("classification", "period", "culture")
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
            if service.store.shared:  # other nodes write too: apply their changes as they commit
                Follower(service).start()
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


@dataclass(frozen=True)
class Limits:
    """The token buckets a request spends from, by who asks (an IP or a key) and what it costs."""

    ip: dict[str, Rate]
    key: dict[str, Rate]

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Limits:
        def rates(prefix: str) -> dict[str, Rate]:
            named = {"read": "RATE_LIMIT", "text": "TEXT_QUERY_RATE_LIMIT", "generation": "GENERATION_RATE_LIMIT"}
            parsed = {cost: parse_rate(settings[prefix + name]) for cost, name in named.items()}
            return {cost: rate for cost, rate in parsed.items() if rate is not None}

        return cls(ip=rates(""), key=rates("KEY_"))


@dataclass
class Runtime:
    slot: ServiceSlot
    keys: KeyStore
    limits: Limits
    counters: RateLimiter
    generations: GenerationSlots | None
    _catalog: Catalog | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def catalog(self, service: Service) -> Catalog:
        """The listing view of ``service``'s store, made on first use."""
        with self._lock:
            if self._catalog is None:
                self._catalog = Catalog(service.store, counted=FACET_FIELDS)
            return self._catalog


    @classmethod
    def create(cls, settings: dict[str, Any], service: Service | None) -> Runtime:
        home = Home.resolve(settings["HOME"]) if service is None else service.home
        run_dir = Path(settings["RUN_DIR"]) if settings["RUN_DIR"] else home.run_dir
        size = settings["MAX_GENERATIONS"]
        return cls(
            slot=ServiceSlot(home, service, wait_s=settings["LOAD_WAIT_S"]),
            keys=key_store(home),
            limits=Limits.from_settings(settings),
            counters=RateLimiter(database_url() or run_dir / DB_FILE),
            generations=GenerationSlots(run_dir, size) if size else None,
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
