"""``/api/v1/flows`` and ``/api/v1/traffic-sources``."""
from flask import current_app, jsonify

from ..flows import (clean_flow, clean_source, flow_to_dict, save_flow, save_source,
                     soft_delete_flow, source_to_dict)
from ..models import Flow, TrafficSource
from . import base_url, bp, found_or_404, json_body, page


def _flow_or_404(flow_id):
    return found_or_404(Flow, Flow.id == flow_id, Flow.deleted == False,  # noqa: E712
                        what="flow %d" % flow_id)


def _source_or_404(source_id):
    return found_or_404(TrafficSource, TrafficSource.id == source_id,
                        what="traffic source %d" % source_id)


def _forget_cached_flows():
    current_app.extensions["tracker.flows"].clear()


@bp.post("/flows")
def create_flow():
    flow = save_flow(clean_flow(json_body()))
    return jsonify(flow_to_dict(flow, base_url())), 201


@bp.get("/flows")
def list_flows():
    return page(Flow.select().where(Flow.deleted == False), Flow.id,  # noqa: E712
                lambda f: flow_to_dict(f, base_url()))


@bp.get("/flows/<int:flow_id>")
def get_flow(flow_id):
    return jsonify(flow_to_dict(_flow_or_404(flow_id), base_url()))


@bp.patch("/flows/<int:flow_id>")
def update_flow(flow_id):
    flow = _flow_or_404(flow_id)
    flow = save_flow(clean_flow(json_body(), partial=True), flow)
    _forget_cached_flows()
    return jsonify(flow_to_dict(flow, base_url()))


@bp.delete("/flows/<int:flow_id>")
def delete_flow(flow_id):
    """Soft delete: the link stops working, its clicks and conversions stay in the reports."""
    flow = _flow_or_404(flow_id)
    soft_delete_flow(flow)
    _forget_cached_flows()
    return "", 204


@bp.post("/traffic-sources")
def create_source():
    return jsonify(source_to_dict(save_source(clean_source(json_body())))), 201


@bp.get("/traffic-sources")
def list_sources():
    return page(TrafficSource.select(), TrafficSource.id, source_to_dict)


@bp.get("/traffic-sources/<int:source_id>")
def get_source(source_id):
    source = _source_or_404(source_id)
    return jsonify(source_to_dict(source))


@bp.patch("/traffic-sources/<int:source_id>")
def update_source(source_id):
    source = _source_or_404(source_id)
    source = save_source(clean_source(json_body(), partial=True), source)
    _forget_cached_flows()
    return jsonify(source_to_dict(source))
