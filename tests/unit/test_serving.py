"""The package's one name is the factory gunicorn calls."""

from __future__ import annotations

from heartrisk import serving
from heartrisk.serving import app, gunicorn_conf


def test_gunicorn_builds_the_app_with_the_packages_factory() -> None:
    assert serving.create_app is app.create_app
    assert gunicorn_conf.wsgi_app == "heartrisk.serving:create_app()"
