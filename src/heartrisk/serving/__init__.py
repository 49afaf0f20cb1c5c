"""The serving app: the risk form, the JSON API and the health probes, on one Flask application.

``create_app()`` builds it (gunicorn calls ``heartrisk.serving:create_app()``); the model holder is
started per worker by ``gunicorn_conf.post_fork``, never in the gunicorn master.
"""

from heartrisk.serving.app import create_app

__all__ = ["create_app"]
