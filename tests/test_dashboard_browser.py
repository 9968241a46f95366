"""The dashboard in a real headless Chromium against ``tracker serve``: first-run setup,
login, a new flow, a click on its tracking link, and that click in the log and the report."""
from urllib.parse import parse_qs, urlparse

from browser_helpers import PHONE, browser, log_in, new_page, screenshots, setup_link  # noqa: F401

PASSWORD = "browser-pass-123"


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
        for path, name in (("/flows", "phone-flows"), ("/reports?group_by=sub1", "phone-report"),
                           ("/logs/clicks", "phone-clicks")):
            phone.goto(path)
            screenshots.take(phone, name)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the page scrolls sideways on a phone: %d px" % width
        assert phone.outside == []
