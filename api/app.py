"""The application factory: settings, the Service, error handling, security, logging and the blueprints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from api.config import load_settings
from api.problems import register_error_handlers
from api.reqlog import install_request_log
from api.routes.artworks import artworks
from api.routes.critiques import critiques
from api.routes.meta import meta, meta_at_root
from api.routes.similar import similar
from api.runtime import Runtime
from api.security import install_security
from api.widget import embed_bp
from critic.service import Service


def blueprints() -> list[Blueprint]:
    """Every blueprint the app serves: the JSON API's resources, then the widget, embed pages and demo."""
    return [
        artworks.blueprint,
        similar.blueprint,
        critiques.blueprint,
        meta.blueprint,
        meta_at_root.blueprint,
        embed_bp,
    ]


def create_app(config: Mapping[str, Any] | None = None, service: Service | None = None) -> Flask:
    """A configured app: defaults, then ``CRITIC_*`` environment variables, then ``config``.

    ``service`` hands in an already loaded build (tests share one); otherwise the build in HOME is loaded,
    in a background thread unless LOAD_IN_BACKGROUND is off.

    Example:
        >>> app = create_app({"HOME": "/tmp/critic-home", "LOAD_IN_BACKGROUND": True})  # doctest: +SKIP
        >>> app.test_client().get("/api/v1/healthz").json                                # doctest: +SKIP
        {'status': 'ok'}
    """
    settings = load_settings(config)
    app = Flask(__name__)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_BODY_BYTES"]
    if settings["TRUSTED_PROXIES"]:
        hops = settings["TRUSTED_PROXIES"]
        # Never X-Forwarded-Host: links built from a client-supplied host would land in cached pages (PUBLIC_URL).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)  # type: ignore[method-assign]
    state = Runtime.create(settings, service)
    app.extensions["critic"] = state
    install_request_log(app)  # first: its after_request runs last and logs the final status
    install_security(app)
    register_error_handlers(app)
    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    state.slot.start(background=settings["LOAD_IN_BACKGROUND"])
    return app
