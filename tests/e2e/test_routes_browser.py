"""Traffic distribution in a real headless Chromium against ``tracker serve`` (DESIGN §4.6,
§4.7): an offer and a lander made on their pages, a flow with two routes built in the route
editor, a visitor through the lander (a real page on a loopback server) on to the offer, one
straight to the offer, and LP CTR in the report and on the flow's page."""

from html import escape
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect
from werkzeug.wrappers import Response

from browser_helpers import first_admin

PASSWORD = "routes-pass-123"


def lander_page(request):
    """The lander: a page whose one link goes on to the offer through ``{click_url}``."""
    go = escape(request.args.get("go", ""), quote=True)
    html = "<!doctype html><title>Quiz</title><h1>Which plan suits you?</h1>"
    return Response(
        html + '<a id="go" href="%s">See the offer</a>' % go, content_type="text/html; charset=utf-8"
    )


def add_route(page, name, sub1, lander=None, offer="Offer A"):
    """Fill the route editor: one rule on sub1, an optional lander, one offer."""
    page.click("text=Add a route")
    page.fill("input[name=name]", name)
    page.fill("input[name=rules-0-field]", "sub1")
    page.select_option("select[name=rules-0-op]", "in")
    page.fill("input[name=rules-0-values]", sub1)
    if lander:
        page.select_option("select[name=landers-0-id]", label=lander)
    page.select_option("select[name=offers-0-id]", label=offer)
    page.click("button:has-text('Add route')")
    page.wait_for_url("**/flows/*#routes")


def cells(page, selector, name):
    return [c.strip() for c in page.locator(selector, has_text=name).locator("td").all_text_contents()]


def test_two_routes_a_lander_and_lp_ctr_in_the_report(start_server, browser, screenshots, receiver):
    receiver.expect_request("/lander").respond_with_handler(lander_page)
    lander_base = receiver.url_for("/").rstrip("/")
    server = start_server("serve", workers=2)
    page = first_admin(browser, server, PASSWORD, also=(lander_base,))
    with screenshots.attached():
        page.goto("/offers/new")
        page.click("button:has-text('Create offer')")  # empty: every mistake at once, next to its field
        expect(page.locator("small.error")).to_have_count(2)
        expect(page.locator("[data-error-for=name]")).to_have_text("The name is required")  # in words
        screenshots.take(page, "offer-errors")
        page.fill("input[name=name]", "Offer A")
        page.fill("input[name=url]", server.url + "/healthz?cid={clickid}&o={offer.id}&l={lander.id}")
        page.fill("input[name=payout]", "3")
        page.click("button:has-text('Create offer')")
        page.wait_for_url(server.url + "/offers")

        page.goto("/landers/new")
        page.fill("input[name=name]", "Quiz")
        page.fill("input[name=url]", lander_base + "/lander?go={click_url}")
        page.click("button:has-text('Create lander')")
        page.wait_for_url(server.url + "/landers")

        page.goto("/flows/new")
        page.fill("input[name=name]", "Two routes")
        page.fill("input[name=offer_url]", server.url + "/healthz?default={clickid}")
        page.click("button:has-text('Create flow')")
        page.wait_for_url("**/flows/*")
        flow_url, tracking_link = page.url, page.text_content("#tracking-link").strip()

        page.click("text=Add a route")
        page.fill("input[name=name]", "Broken")
        page.fill("input[name=rules-0-field]", "sub_1")
        page.fill("input[name=rules-0-values]", "lp")
        page.click("button:has-text('Add route')")
        expect(page.locator("[data-error-for=rules-0]")).to_contain_text("rule 1: unknown field 'sub_1'")
        expect(page.locator("[data-error-for=offers]")).to_contain_text("needs at least one offer")
        screenshots.take(page, "route-errors")
        page.goto(flow_url)

        add_route(page, "Via lander", "lp", lander="Quiz")
        add_route(page, "Direct", "direct")
        expect(page.locator("#routes-table tbody tr")).to_have_count(2)
        screenshots.take(page, "routes")

        # A visitor through the lander, on to the offer.
        page.goto(tracking_link + "?sub1=lp")
        assert page.url.startswith(lander_base + "/lander?go=")
        expect(page.locator("h1")).to_have_text("Which plan suits you?")
        screenshots.take(page, "lander")
        page.click("#go")
        page.wait_for_url(server.url + "/healthz?**")
        offer_query = parse_qs(urlparse(page.url).query)
        assert set(offer_query) == {"cid", "o", "l"}
        click_id = offer_query["cid"][0]
        page.goto(server.url + "/click")  # the tid cookie alone finds the click again
        assert parse_qs(urlparse(page.url).query)["cid"] == [click_id]

        # Another visitor straight to the offer.
        page.goto(tracking_link + "?sub1=direct")
        direct = parse_qs(urlparse(page.url).query)
        assert (urlparse(page.url).path, direct["o"], "l" in direct) == ("/healthz", offer_query["o"], False)

        page.goto("/reports?group_by=route")
        via = cells(page, "tbody tr", "Via lander")
        assert (via[1], via[12], via[13], via[14]) == (
            "1",
            "1",
            "1",
            "100.00",
        )  # clicks, LP views, LP clicks, LP CTR (after pending and events)
        straight = cells(page, "tbody tr", "Direct")
        assert (straight[1], straight[12], straight[14]) == ("1", "0", "–")
        screenshots.take(page, "report")

        page.goto(flow_url)
        shares = [cells(page, "#routes-table tbody tr", name)[5] for name in ("Via lander", "Direct")]
        assert shares == ["50.0%", "50.0%"]
        landers = cells(page, "#flow-landers tbody tr", "Quiz")
        assert landers[2:5] == ["1", "1", "100.00"]
        screenshots.take(page, "flow-figures")

        page.goto("/offers")
        assert cells(page, "#offers-table tbody tr", "Offer A")[3] == "2"
        page.goto(flow_url)
        page.click("button:has-text('Clone')")
        expect(page.locator("h1")).to_contain_text("Two routes (copy)")
        expect(page.locator("#routes-table tbody tr")).to_have_count(2)
        screenshots.take(page, "clone")
        assert page.outside == []
