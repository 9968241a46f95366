"""What the Schemathesis run found, pinned: ids beyond 64 bits and NUL characters never reach
the database (which refuses them with a 500 on one engine or the other)."""

import pytest

BEYOND = str(2**63)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/flows/" + BEYOND),
        ("PATCH", "/api/v1/flows/" + BEYOND),
        ("DELETE", "/api/v1/flows/" + BEYOND),
        ("GET", "/api/v1/conversions/" + BEYOND),
        ("POST", "/api/v1/deliveries/%s/retry" % BEYOND),
        ("PATCH", "/api/v1/traffic-sources/" + BEYOND),
        ("GET", "/api/v1/clicks/ab%00cd"),
    ],
)
def test_impossible_ids_are_404(api, method, path):
    status, body = api.call(method, path, json={"name": "x"} if method == "PATCH" else None)
    assert status == 404
    assert body["error"] in (
        "no such id: %s is beyond 64 bits" % BEYOND,
        "no such id: it holds a NUL character",
    )


def test_the_largest_id_is_merely_not_found(api):
    assert api.get("/api/v1/flows/%d" % (2**63 - 1)) == (404, {"error": "flow %d not found" % (2**63 - 1)})


@pytest.mark.parametrize(
    "path, name",
    [
        ("/api/v1/clicks?cursor=a%00b", "cursor"),
        ("/api/v1/deliveries?click_id=a%00b", "click_id"),
        ("/api/v1/deliveries?status=a%00", "status"),
        ("/api/v1/conversions?click_id=a%00b", "click_id"),
        ("/api/v1/postbacks?endpoint=%00", "endpoint"),
    ],
)
def test_nul_in_a_text_argument_is_400(api, path, name):
    assert api.get(path) == (400, {"error": "%s must not contain NUL characters" % name})


def test_a_stats_flow_id_beyond_64_bits_is_400(api):
    assert api.get("/api/v1/stats?flow_id=" + BEYOND) == (
        400,
        {"error": "flow_id must be an id from 1 to %d" % (2**63 - 1)},
    )
