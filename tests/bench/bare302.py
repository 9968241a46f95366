"""The baseline of the click benchmark: a Flask app whose one route only answers 302.

Served by ``clicks.py`` with the tracker's own gunicorn settings, so the ratio
tracker/bare measures what recording a click costs, not Flask or gunicorn.
"""

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.route("/r/<path:key>")
def click(key):
    """The same redirect the tracker answers, with nothing recorded."""
    return Response(
        status=302, headers={"Location": "https://offer.example/lp?cid=" + key, "Cache-Control": "no-store"}
    )


@app.route("/postback", methods=["GET", "POST"])
def postback():
    """The baseline of the postback benchmark: a JSON answer, nothing recorded."""
    return jsonify(status="ok", conversion_id=1, error=None)
