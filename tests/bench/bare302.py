"""The baseline of the click benchmark: a Flask app whose one route only answers 302.

Served by ``clicks.py`` with the tracker's own gunicorn settings, so the ratio
tracker/bare measures what recording a click costs, not Flask or gunicorn.
"""

from flask import Flask, Response

app = Flask(__name__)


@app.route("/r/<path:key>")
def click(key):
    """The same redirect the tracker answers, with nothing recorded."""
    return Response(
        status=302, headers={"Location": "https://offer.example/lp?cid=" + key, "Cache-Control": "no-store"}
    )
