"""API settings: defaults, then ``CRITIC_*`` environment variables, then the caller's overrides.

Every setting has a default here; ``CRITIC_<NAME>`` overrides it (``CRITIC_RATE_LIMIT=60/minute``), and
``create_app({"RATE_LIMIT": ...})`` overrides both. Values from the environment are parsed by the type of
the default; a bad value is a ConfigError naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "CRITIC_"

DEFAULTS: dict[str, Any] = {
    # Build directory; None means $CRITIC_HOME or the user data directory (critic.home).
    "HOME": None,
    # Largest request body accepted, in bytes (Flask's MAX_CONTENT_LENGTH); larger ones get 413.
    "MAX_BODY_BYTES": 128 * 1024,
    # Origins allowed to write (POST/PATCH/DELETE /artworks) from a browser; reads are open to any origin.
    "CORS_ORIGINS": [],
    # Token bucket per client IP (requests without a valid key; IPv6 by /64) and per API key:
    # "N/second|minute|hour" (the burst is N), or "off". Every worker of a server shares the counters.
    "RATE_LIMIT": "300/minute",
    "KEY_RATE_LIMIT": "1200/minute",
    # Costly requests spend a token of these buckets as well. Generation (critiques, descriptions) takes
    # about a CPU-second, a text query (similar-by-text, listing with q) about 10 ms of encoding.
    "GENERATION_RATE_LIMIT": "10/minute",
    "KEY_GENERATION_RATE_LIMIT": "60/minute",
    "TEXT_QUERY_RATE_LIMIT": "60/minute",
    "KEY_TEXT_QUERY_RATE_LIMIT": "300/minute",
    # Generations running at once on the whole server (all workers); one more is answered 503 with
    # Retry-After at once instead of queueing, so reads keep their threads. 0: no cap.
    "MAX_GENERATIONS": 2,
    # Where the workers' shared rate-limit counters and generation slots live; None: <home>/run.
    "RUN_DIR": None,
    # When true, reads need an API key too (writes always do).
    "READS_NEED_KEY": False,
    # Cache-Control max-age of read responses, seconds (CDNs revalidate with the ETag after it).
    "CACHE_MAX_AGE": 60,
    # Number of reverse proxies in front whose X-Forwarded-For/-Proto can be trusted (werkzeug ProxyFix).
    # With 0 behind a proxy, every client shares the proxy's address and so one rate-limit bucket.
    # X-Forwarded-Host is never trusted.
    "TRUSTED_PROXIES": 0,
    # The address the public reaches the service at ("https://art.example.org"); links that leave the
    # response (oEmbed's iframe, the embed page's discovery link) are built from it. Unset: from the
    # Host the request was sent to.
    "PUBLIC_URL": "",
    # Load the model and index in a background thread (healthz answers at once, readyz once loaded),
    # or before the app is returned.
    "LOAD_IN_BACKGROUND": True,
    # How long a request that needs the model waits for a loading worker before a 503, seconds.
    "LOAD_WAIT_S": 30,
    # One JSON line per request on stderr.
    "LOG_REQUESTS": True,
}


RATE_SETTINGS = (
    "RATE_LIMIT",
    "KEY_RATE_LIMIT",
    "GENERATION_RATE_LIMIT",
    "KEY_GENERATION_RATE_LIMIT",
    "TEXT_QUERY_RATE_LIMIT",
    "KEY_TEXT_QUERY_RATE_LIMIT",
)


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Rate:
    """A token bucket's shape: ``capacity`` requests, refilled over ``period`` seconds."""

    capacity: int
    period: float

    @property
    def per_second(self) -> float:
        return self.capacity / self.period


_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")


def parse_rate(text: str | None) -> Rate | None:
    """``"120/minute"`` -> Rate(120, 60.0); ``"off"``, ``"0"``, ``""`` or None -> None (no limit).

    Example:
        >>> parse_rate("10/second")
        Rate(capacity=10, period=1.0)
    """
    if text is None or str(text).strip().lower() in ("", "0", "off", "none"):
        return None
    match = _RATE.match(str(text).lower())
    if not match or int(match.group(1)) < 1:
        raise ConfigError(f"bad rate {text!r}: expected N/second, N/minute, N/hour or off")
    return Rate(int(match.group(1)), _PERIODS[match.group(2)])


def _from_env(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r}: expected true or false")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name}={raw!r}: expected an integer") from None
    if isinstance(default, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """The effective settings (upper-case names, as in ``DEFAULTS``), checked.

    ``overrides`` may also carry Flask's own keys (``TESTING``); they pass through unchecked.
    """
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for name, default in DEFAULTS.items():
        raw = environ.get(ENV_PREFIX + name)
        if raw is not None:
            settings[name] = _from_env(name, raw, default)
    settings.update(overrides or {})
    for name in RATE_SETTINGS:
        parse_rate(settings[name])  # fail at start, not on the first request
    for name in ("MAX_BODY_BYTES", "CACHE_MAX_AGE", "TRUSTED_PROXIES", "LOAD_WAIT_S", "MAX_GENERATIONS"):
        if not isinstance(settings[name], int) or settings[name] < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {settings[name]!r}")
    if isinstance(settings["CORS_ORIGINS"], str):
        settings["CORS_ORIGINS"] = _from_env("CORS_ORIGINS", settings["CORS_ORIGINS"], [])
    for origin in settings["CORS_ORIGINS"]:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ConfigError(f"CORS origin {origin!r} must look like https://host[:port] (no path), or *")
    url = settings["PUBLIC_URL"] = str(settings["PUBLIC_URL"] or "").rstrip("/")
    if url and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", url):
        raise ConfigError(f"PUBLIC_URL {url!r} must look like https://host[:port][/path]")
    return settings
