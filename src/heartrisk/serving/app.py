"""The Flask application factory: the form, the API and the probes as blueprints, the request timer and
headers, and the error pages (JSON under /api and /v2, a page elsewhere, never a traceback)."""

from __future__ import annotations

import logging
import time
from functools import partial

from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from heartrisk.config import get_settings
from heartrisk.predlog import open_log
from heartrisk.serving import metrics, security
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.serving.runtime import EXTENSION, Runtime, request_id
from heartrisk.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, holder: ModelHolder | None = None) -> Flask:
    """Build the app; the holder is not started here (see ``gunicorn_conf``), so tests control it."""
    settings = settings or get_settings()
    holder = holder or ModelHolder(settings)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.app.max_request_bytes, DEBUG=False, PROPAGATE_EXCEPTIONS=False)
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    predictions = open_log(settings.predictions_db, sqlite_synchronous=settings.predictions_sqlite_synchronous)
    app.extensions[EXTENSION] = Runtime(settings, holder, predictions)
    holder.subscribe(metrics.model_swapped)
    holder.subscribe_refusals(metrics.model_refused)
    holder.subscribe_polls(partial(metrics.model_polled, model=settings.mlflow.model_name))

    from heartrisk.serving import api, health, v2, web

    app.register_blueprint(web.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(v2.bp)
    app.before_request(_start_timer)
    app.after_request(_finish)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    if proxies := settings.app.trusted_proxies:  # behind a proxy (nginx in the scale-out stack): client and scheme
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    return app


def _start_timer() -> None:
    g.started = time.perf_counter()


def _finish(response):
    endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
    if "started" in g:
        metrics.observe_request(request.method, endpoint, response.status_code, time.perf_counter() - g.started)
    response.headers["X-Request-ID"] = request_id()
    return security.add_headers(response, static=request.endpoint == "static")


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/v2/")) or request.accept_mimetypes.best == "application/json"


def _http_error(exc: HTTPException):
    """Every 4xx/5xx the framework raises: JSON under /api and /v2 (the shape of both), a friendly page elsewhere."""
    status = exc.code or 500
    if _wants_json():
        allow = [h for h in exc.get_headers() if h[0] == "Allow"]  # a 405 says what is allowed (RFC 9110)
        return jsonify({"error": exc.description or exc.name}), status, allow
    return render_template("error.html", status=status, title=exc.name, message=exc.description), status


def _unexpected_error(exc: Exception):
    """A bug: logged with its traceback here, never shown to the client."""
    log.exception("unexpected error (request %s)", request_id())
    return _http_error(InternalServerError(f"Something went wrong on our side (request {request_id()})."))
