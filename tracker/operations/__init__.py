"""Running the tracker day to day (DESIGN §4.9): ``metrics`` (``GET /metrics``), ``backup``
(``tracker db backup|restore``) and ``retention`` (the daily purge of old clicks)."""


def init_app(app):
    """Serve ``/metrics`` and time every request (outermost, so clicks are timed too)."""
    from .metrics import RequestTimer, bp

    app.register_blueprint(bp)
    app.wsgi_app = RequestTimer(app.wsgi_app)
