"""tracker: a self-hosted click tracker for performance marketing."""

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from . import config, db, web


class LazyRule(Rule):
    """A URL rule whose URL builders are compiled on its first ``url_for``, not at registration.

    Werkzeug compiles two builders per rule with ``ast`` when the rule is added: for our ~100
    rules that is two thirds of ``create_app`` (about 25 ms of 37), paid by every gunicorn worker,
    every CLI command and every test, for builders most processes never call. Matching is
    unchanged (it is compiled by the map, not here)."""

    def _compile_builder(self, append_unknown=True):
        compiled = None

        def build(rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            return compiled(*args, **kwargs)

        return build


def create_app(test_config=None):
    """The application factory: config, database, enrichment, and every blueprint."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=(test_config or {}).get("INSTANCE_PATH") or config.default_instance_path(),
    )
    app.url_rule_class = LazyRule
    config.load_config(app, test_config)
    app.session_interface = web.LazySessionInterface()
    app.url_value_preprocessor(web.refuse_impossible_ids)
    db.init_app(app)
    init_enrichment(app)

    from . import api, clickin, dashboard, health, operations
    from .conversions import routes as conversions

    clickin.init_app(app)
    operations.init_app(app)  # after the click fast path: its timer wraps clicks too
    app.register_blueprint(health.bp)
    app.register_blueprint(conversions.bp)
    api.init_app(app)
    dashboard.init_app(app)  # last: it exempts the blueprints above from CSRF

    @app.errorhandler(HTTPException)
    def _http_error(exc):
        return jsonify(error=exc.description or exc.name), exc.code

    @app.errorhandler(Exception)
    def _server_error(exc):
        logging.getLogger(__name__).exception("unhandled error")
        return jsonify(error="internal error"), 500

    return app


def init_enrichment(app):
    """Attach the GeoIP databases, the user-agent parser and the flow cache to the app."""
    from .clickin.flow_cache import FlowCache
    from .enrichment.geoip import GeoIP, announce_geoip
    from .enrichment.useragent import parse_user_agent

    app.extensions["tracker.geoip"] = GeoIP(app.config["TRACKER_GEOIP_DIR"])
    app.extensions.setdefault("tracker.on_serve", []).append(announce_geoip)
    app.extensions["tracker.parse_user_agent"] = parse_user_agent
    app.extensions["tracker.flows"] = FlowCache(timezone=app.config["TRACKER_TIMEZONE"])
