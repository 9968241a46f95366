"""The WSGI entry for gunicorn: ``gunicorn wsgi:app``. Each worker process logs in the
tracker's format, and resumes draining a click spool an earlier process left (DESIGN §4.8)."""

from tracker import create_app
from tracker.operations.process_logs import configure_logging

configure_logging()
app = create_app()
configure_logging(app.config["TRACKER_LOG_FORMAT"])  # instance/config.py may name it
app.extensions["tracker.spool"].drainer.resume()
