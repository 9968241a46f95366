"""Stage ①, the click-in: ``GET /r/<key>`` records a click and redirects.

``wsgi`` is the edge (the request becomes a ``Visitor``), ``flow_cache`` finds the flow,
``record`` writes the click.
"""

from .spool import ClickSpool
from .wsgi import ClickFastPath, bp


def init_app(app):
    """Register the click route and the node's click spool, and put the fast path in front of Flask."""
    app.extensions["tracker.spool"] = ClickSpool(
        app.config["TRACKER_CLICK_SPOOL"], app.config["TRACKER_CLICK_BATCH_MS"]
    )
    app.register_blueprint(bp)
    # Every other request first writes the node's write-behind clicks (TRACKER_CLICK_BATCH_MS).
    app.before_request(app.extensions["tracker.spool"].settle)
    app.wsgi_app = ClickFastPath(app, app.wsgi_app)
