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
    # Token bucket per client IP (requests without a valid key) and per API key: "N/second|minute|hour"
    # (the burst is N), or "off".
    "RATE_LIMIT": "300/minute",
    "KEY_RATE_LIMIT": "1200/minute",
    # When true, reads need an API key too (writes always do).
    "READS_NEED_KEY": False,
    # Cache-Control max-age of read responses, seconds (CDNs revalidate with the ETag after it).
    "CACHE_MAX_AGE": 60,
    # Number of reverse proxies in front whose X-Forwarded-For/-Proto can be trusted (werkzeug ProxyFix).
    "TRUSTED_PROXIES": 0,
    # Load the model and index in a background thread (healthz answers at once, readyz once loaded),
    # or before the app is returned.
    "LOAD_IN_BACKGROUND": True,
    # How long a request that needs the model waits for a loading worker before a 503, seconds.
    "LOAD_WAIT_S": 30,
    # One JSON line per request on stderr.
    "LOG_REQUESTS": True,
}


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
    for name in ("RATE_LIMIT", "KEY_RATE_LIMIT"):
        parse_rate(settings[name])  # fail at start, not on the first request
    for name in ("MAX_BODY_BYTES", "CACHE_MAX_AGE", "TRUSTED_PROXIES", "LOAD_WAIT_S"):
        if not isinstance(settings[name], int) or settings[name] < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {settings[name]!r}")
    if isinstance(settings["CORS_ORIGINS"], str):
        settings["CORS_ORIGINS"] = _from_env("CORS_ORIGINS", settings["CORS_ORIGINS"], [])
    for origin in settings["CORS_ORIGINS"]:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ConfigError(f"CORS origin {origin!r} must look like https://host[:port] (no path), or *")
    return settings
