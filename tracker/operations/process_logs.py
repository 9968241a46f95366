"""The log lines of every process (DESIGN §4.9): web workers, the delivery worker, the CLI.

Each line carries its time (UTC, to the millisecond), level, logger and process id;
``TRACKER_LOG_FORMAT=json`` makes it one JSON object a line. INFO lines are kept. gunicorn's
own lines get the same shape through ``GunicornLogger`` (``--logger-class``).
"""

import datetime
import json
import logging
import os
import sys

from gunicorn.glogging import Logger as _GunicornLogger

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


class UTCFormatter(logging.Formatter):
    """Text lines: ``2026-11-29T01:02:03.456Z INFO tracker.clickin.spool [123] message``."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record, datefmt=None):
        return iso_time(record.created)


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, pid, message (and the exception)."""

    def format(self, record):
        line = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def iso_time(created):
    """A record's time as ISO 8601 UTC with milliseconds."""
    moment = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def log_format(value=None):
    """``text`` or ``json``: ``value``, else ``TRACKER_LOG_FORMAT``, else text."""
    value = (value or os.environ.get("TRACKER_LOG_FORMAT") or "text").strip().lower()
    return "json" if value == "json" else "text"


def formatter(value=None):
    """The formatter for ``value`` (see ``log_format``)."""
    return JSONFormatter() if log_format(value) == "json" else UTCFormatter()


def configure_logging(value=None, stream=None):
    """Send every logger's INFO and above to stderr in the chosen format; called once by each
    process's entry point (``tracker …``, gunicorn's ``wsgi.py``), never by the app factory,
    so tests and embedding programs keep their own logging."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "tracker_handler", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.tracker_handler = True
    handler.setFormatter(formatter(value))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


class GunicornLogger(_GunicornLogger):
    """gunicorn's own log lines (its master and workers) in the tracker's format."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter())
