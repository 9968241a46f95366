"""The dashboard in a real headless Chromium against ``tracker serve``: first-run setup,
login, a new flow, a click on its tracking link, and that click in the log and the report;
then a media buyer's whole day: a Facebook postback from its preset, its live preview and a
test send, a click, an advertiser's postback, the numbers, the delivery with its attempt at a
loopback receiver, and a resend; a TikTok revenue preset filling its header, answer, test
code and filters, and a test send that carries them."""

import hashlib
import json
import re
from urllib.parse import parse_qs, urlparse

import requests
from playwright.sync_api import expect

from browser_helpers import PHONE, log_in, new_page, scroll_width, setup_link
from postback_helpers import catch_all, received

PASSWORD = "browser-pass-123"
PIXEL, ACCESS_TOKEN = "123456789012345", "EAAGbrowserSecret"
FAST_WORKER = {"TRACKER_WORKER_INTERVAL": "0.2", "TRACKER_RETRY_DELAYS": "0.5,0.5"}


def test_first_run_to_a_click_in_the_report(start_server, browser, screenshots):  # noqa: F811
    server = start_server("serve", workers=2)
    link = setup_link(server)
    assert link.startswith(server.url + "/setup?token=")
    page = new_page(browser, server.url)
    with screenshots.attached():
        page.goto(link)
        screenshots.take(page, "setup")
        page.fill("input[name=username]", "buyer")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/flows")
        assert page.get_by_text("No flows yet").is_visible()
        screenshots.take(page, "flows-empty")

        page.click("button:has-text('Log out')")
        page.wait_for_url(server.url + "/login")
        assert page.goto(link).status == 403  # the setup link worked once
        screenshots.take(page, "setup-used")
        log_in(page, "buyer", PASSWORD)
        page.wait_for_url(server.url + "/flows")

        page.click("text=Create your first flow")
        page.fill("input[name=name]", "Browser flow")
        page.fill("input[name=offer_url]", server.url + "/healthz?cid={clickid}&s={sub1}")
        screenshots.take(page, "flow-form")
        page.click("button:has-text('Create flow')")
        page.wait_for_url("**/flows/*")
        tracking_link = page.text_content("#tracking-link").strip()
        assert tracking_link.startswith(server.url + "/r/")
        screenshots.take(page, "flow")

        page.goto(tracking_link + "?sub1=from-the-browser&utm_source=e2e")
        landed = urlparse(page.url)
        assert (landed.path, parse_qs(landed.query)["s"]) == ("/healthz", ["from-the-browser"])
        click_id = parse_qs(landed.query)["cid"][0]

        page.goto("/logs/clicks")
        assert page.get_by_text("from-the-browser").is_visible()
        screenshots.take(page, "clicks")
        page.click("text=" + click_id)
        page.wait_for_url("**/logs/clicks/" + click_id)
        assert page.get_by_text("e2e").first.is_visible()
        screenshots.take(page, "click")

        page.goto("/reports?group_by=sub1")
        row = page.locator("tr", has_text="from-the-browser")
        assert row.locator("td").nth(1).text_content().strip() == "1"
        assert page.locator("svg rect.bar").count() == 7  # a bar per day of the last week
        screenshots.take(page, "report")
        assert page.outside == []

        phone = new_page(browser, server.url, PHONE)
        log_in(phone, "buyer", PASSWORD)
        phone.wait_for_url(server.url + "/flows")
        for path, name in (
            ("/flows", "phone-flows"),
            ("/reports?group_by=sub1", "phone-report"),
            ("/logs/clicks", "phone-clicks"),
        ):
            phone.goto(path)
            screenshots.take(phone, name)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the page scrolls sideways on a phone: %d px" % width
        assert phone.outside == []


def first_admin(browser, server):  # noqa: F811
    """Create the first admin through the setup link, then log in on a fresh page."""
    setup = new_page(browser, server.url)
    setup.goto(setup_link(server))
    setup.fill("input[name=username]", "buyer")
    setup.fill("input[name=password]", PASSWORD)
    setup.fill("input[name=confirm]", PASSWORD)
    setup.click("button[type=submit]")
    setup.wait_for_url(server.url + "/flows")
    setup.context.close()
    page = new_page(browser, server.url)
    log_in(page, "buyer", PASSWORD)
    page.wait_for_url(server.url + "/flows")
    return page


def facebook_events(receiver):
    """The JSON bodies the receiver got at the Facebook events path, oldest first."""
    return [
        (request.args.to_dict(), json.loads(request.get_data(as_text=True)))
        for request in received(receiver)
        if request.path == "/v21.0/%s/events" % PIXEL
    ]


def test_facebook_postback_from_preset_to_receiver_with_preview_test_and_resend(
    start_server, browser, screenshots, receiver
):  # noqa: F811
    catch_all(receiver, body='{"events_received": 1}', headers={"Content-Type": "application/json"})
    server = start_server("serve", workers=2, env=FAST_WORKER)
    receiver_base = receiver.url_for("/").rstrip("/")
    page = first_admin(browser, server)
    with screenshots.attached():
        page.click("text=Create your first flow")
        page.fill("input[name=name]", "FB leads")
        page.fill("input[name=offer_url]", server.url + "/healthz?cid={clickid}")
        page.click("button:has-text('Create flow')")
        page.wait_for_url("**/flows/*")
        flow_url, tracking_link = page.url, page.text_content("#tracking-link").strip()

        # The editor: a preset, then its host pointed at our receiver, previewed as typed.
        page.click("text=Add a postback")
        page.select_option("#postback-preset", "facebook_conversion")
        expect(page.locator("input[name=preset-pixel_code]")).to_be_hidden()  # TikTok's input
        page.fill("input[name=preset-pixel_id]", PIXEL)
        page.fill("input[name=preset-access_token]", ACCESS_TOKEN)
        page.click("#preset-apply")
        expect(page.locator("#postback-url")).to_have_value(
            re.compile(
                r"^https://graph\.facebook\.com/v21\.0/%s/events\?access_token=%s\|JSON\|"
                % (PIXEL, ACCESS_TOKEN)
            )
        )
        assert page.input_value("#postback-trigger") == "conversion"
        expect(page.locator("#preview-request")).to_contain_text("POST https://graph.facebook.com/v21.0/")
        page.fill("#postback-url", page.input_value("#postback-url").replace('"{email}"', '"{email|sha265}"'))
        expect(page.locator("#preview-error")).to_have_text(
            "{email|sha265}: unknown filter 'sha265' "
            "(known: sha256, digits, e164, lower, upper, trim, raw, required)"
        )
        screenshots.take(page, "editor-error")
        # Pointed at a receiver of ours, the payload is no longer Meta's to hash: the filter does it.
        page.fill(
            "#postback-url",
            page.input_value("#postback-url")
            .replace("{email|sha265}", "{email|sha256}")
            .replace("https://graph.facebook.com", receiver_base),
        )
        request_box = page.locator("#preview-request")
        expect(request_box).to_contain_text(
            "POST %s/v21.0/%s/events?access_token=%s" % (receiver_base, PIXEL, ACCESS_TOKEN)
        )
        expect(request_box).to_contain_text("Content-Type: application/json")
        expect(request_box).to_contain_text('"event_name": "Lead"')
        expect(page.locator("#preview-error")).to_have_count(0)
        assert "sample values" in page.text_content("#preview-subject")
        screenshots.take(page, "editor-preview")

        page.click("#send-test")
        test_link = page.locator("#test-delivery a").first
        expect(test_link).to_be_visible()
        test_href = test_link.get_attribute("href")
        page.click("button:has-text('Add postback')")
        page.wait_for_url(flow_url + "#postbacks")
        expect(page.locator("#postbacks")).to_contain_text("access_token=***")
        assert ACCESS_TOKEN not in page.content()
        screenshots.take(page, "flow-with-postback")

        page.goto(test_href)  # queued or sending: it reloads itself until the attempt is in
        expect(page.locator("h1 .badge.delivered")).to_be_visible(timeout=15000)
        expect(page.locator("h1")).to_contain_text("test")
        screenshots.take(page, "test-delivery")
        [(query, sample)] = facebook_events(receiver)
        assert query == {"access_token": ACCESS_TOKEN}
        assert sample["data"][0]["event_name"] == "Lead"

        # A click, then the advertiser's postback with the lead's email.
        page.goto(tracking_link)
        click_id = parse_qs(urlparse(page.url).query)["cid"][0]
        answer = requests.get(
            server.url + "/postback",
            params={"click_id": click_id, "payout": "25.50", "email": " Buyer@Example.COM "},
            timeout=10,
        )
        assert (answer.status_code, answer.json()["status"]) == (200, "ok")

        page.goto("/reports?group_by=flow")
        cells = page.locator("tbody tr", has_text="FB leads").locator("td")
        assert [cells.nth(i).text_content().strip() for i in (1, 3, 4)] == ["1", "1", "25.50"]
        screenshots.take(page, "report")

        page.goto("/logs/deliveries")
        page.locator("tr", has_text="conversion").locator("a").first.click()
        page.wait_for_url("**/logs/deliveries/*")
        attempts = page.locator("#attempts tbody tr")
        expect(attempts).to_have_count(1, timeout=15000)
        expect(attempts.first).to_contain_text("200")
        expect(page.locator("#request")).to_contain_text("access_token=***")
        screenshots.take(page, "delivery")
        [_, (query, event)] = facebook_events(receiver)
        lead = event["data"][0]
        assert query == {"access_token": ACCESS_TOKEN}
        assert lead["event_id"] == click_id
        assert lead["user_data"]["em"] == hashlib.sha256(b"buyer@example.com").hexdigest()
        assert lead["user_data"]["client_user_agent"] == page.evaluate("navigator.userAgent")

        page.click("#resend-form button")  # queued again: the page reloads until the attempt is in
        expect(attempts).to_have_count(2, timeout=15000)
        expect(page.locator("h1 .badge.delivered")).to_be_visible()
        screenshots.take(page, "delivery-resent")
        resent = facebook_events(receiver)
        assert len(resent) == 3 and resent[2] == resent[1]  # exactly the same request again
        assert page.outside == []

        phone = new_page(browser, server.url, PHONE)
        log_in(phone, "buyer", PASSWORD)
        phone.wait_for_url(server.url + "/flows")
        phone.goto(flow_url)
        phone.click("#postbacks a:has-text('Edit')")
        expect(phone.locator("#preview-subject")).to_contain_text("latest conversion")
        screenshots.take(phone, "phone-editor")
        assert scroll_width(phone) <= PHONE["width"], "the editor scrolls sideways on a phone"
        assert phone.outside == []


def test_a_tiktok_revenue_preset_fills_its_header_answer_test_code_and_filters(
    start_server, browser, screenshots, receiver
):  # noqa: F811
    catch_all(receiver, body='{"code":0,"message":"OK"}', headers={"Content-Type": "application/json"})
    server = start_server("serve", workers=1, env=FAST_WORKER)
    page = first_admin(browser, server)
    with screenshots.attached():
        page.click("text=Create your first flow")
        page.fill("input[name=name]", "TikTok sales")
        page.fill("input[name=offer_url]", server.url + "/healthz?cid={clickid}")
        page.click("button:has-text('Create flow')")
        page.wait_for_url("**/flows/*")
        flow_url = page.url

        page.click("text=Add a postback")
        page.select_option("#postback-preset", "tiktok_revenue")
        page.fill("input[name=preset-pixel_code]", "C4PIXEL77")
        page.fill("input[name=preset-access_token]", "tt-browser-secret")
        page.fill("input[name=preset-test_event_code]", "TEST777")
        page.click("#preset-apply")
        expect(page.locator("#postback-headers")).to_have_value("Access-Token: tt-browser-secret")
        expect(page.locator("#request-options")).to_have_attribute("open", "")
        assert page.input_value("#postback-trigger") == "status"
        assert page.is_checked("input[name=statuses][value=approved]")
        assert not page.is_checked("input[name=statuses][value=pending]")
        assert page.input_value("select[name=payout_type]") == "payout"
        assert page.input_value("#postback-test-code") == "TEST777"
        assert page.input_value("#postback-success-body") == r'"code"\s*:\s*0\s*[,}]'
        expect(page.locator("#preview-request")).to_contain_text("Access-Token: tt-browser-secret")
        screenshots.take(page, "tiktok-preset")

        page.fill(
            "#postback-url",
            page.input_value("#postback-url").replace(
                "https://business-api.tiktok.com", receiver.url_for("/").rstrip("/")
            ),
        )
        page.click("#send-test")
        test_link = page.locator("#test-delivery a").first
        expect(test_link).to_be_visible()
        test_href = test_link.get_attribute("href")
        page.click("button:has-text('Add postback')")
        page.wait_for_url(flow_url + "#postbacks")
        assert "tt-browser-secret" not in page.content()
        page.goto(test_href)
        expect(page.locator("h1 .badge.delivered")).to_be_visible(timeout=15000)
        expect(page.locator("#request")).to_contain_text("Access-Token: ***")
        assert "tt-browser-secret" not in page.content()
        [request] = received(receiver)
        assert request.headers["Access-Token"] == "tt-browser-secret"
        assert request.get_json()["test_event_code"] == "TEST777"
        screenshots.take(page, "tiktok-test-delivery")
        assert page.outside == []
