"""``/api/v1/conversions`` and ``/api/v1/postbacks`` (the inbound log), newest first."""

from flask import jsonify

from .. import logs
from ..errors import found
from ..models import Conversion, InboundRequest
from ..web import bool_arg, int_arg, text_arg
from . import bp, page
from .shapes import conversion_to_dict, inbound_to_dict


@bp.get("/conversions")
def list_conversions():
    query = logs.conversions(
        flow_id=int_arg("flow_id"), click_id=text_arg("click_id"), status=text_arg("status")
    )
    return page(query, Conversion.id, conversion_to_dict)


@bp.get("/conversions/<int:conversion_id>")
def get_conversion(conversion_id):
    conversion = found(Conversion, Conversion.id == conversion_id, what="conversion %d" % conversion_id)
    return jsonify(conversion_to_dict(conversion))


@bp.get("/postbacks")
def list_inbound():
    """The inbound log: every /postback and /api/v1/events request, accepted or refused."""
    query = logs.inbound(
        flow_id=int_arg("flow_id"),
        accepted=bool_arg("accepted"),
        endpoint=text_arg("endpoint"),
        click_id=text_arg("click_id"),
    )
    return page(query, InboundRequest.id, inbound_to_dict)


@bp.get("/postbacks/<int:inbound_id>")
def get_inbound(inbound_id):
    row = found(InboundRequest, InboundRequest.id == inbound_id, what="inbound request %d" % inbound_id)
    return jsonify(inbound_to_dict(row))
