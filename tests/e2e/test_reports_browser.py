"""The reports page in a real headless Chromium against ``tracker serve``: a drill-down from a
traffic source to its sub ids, a time-zone change that moves the hours, a comparison with the
previous period, and a cost update whose cost shows in the report and in the flows list."""

import datetime
import re

import requests

from browser_helpers import first_admin

PASSWORD = "browser-pass-123"


def cells(page, row):
    return [
        text.strip() for text in page.locator("#report tbody tr").nth(row).locator("td").all_inner_texts()
    ]


def test_drill_down_time_zone_comparison_and_cost(start_server, browser, screenshots):
    server = start_server("serve", workers=2)
    flow = server.api(
        "POST",
        "/api/v1/flows",
        json={"name": "Browser report", "offer_url": server.url + "/healthz?c={clickid}"},
    ).json()
    visits = [("fb", "zoneA"), ("fb", "zoneA"), ("fb", "zoneB"), ("tt", "zoneC")]
    for source, zone in visits:
        answer = requests.get(
            server.url + "/r/" + flow["key"],
            params={"utm_source": source, "sub1": zone},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302
    now = datetime.datetime.now(datetime.timezone.utc)  # the clicks' hour (the test takes seconds)
    page = first_admin(browser, server, PASSWORD)
    with screenshots.attached():
        page.goto("/reports?preset=today&g1=utm_source&g2=sub1&tz=UTC")
        screenshots.take(page, "by-source")
        assert cells(page, 0)[:2] == ["fb", "3"] and cells(page, 1)[:2] == ["tt", "1"]
        assert page.text_content("#zone").strip() == "UTC"

        page.click("#report a.drill:has-text('fb')")  # drill down into fb: its sub1 values
        page.wait_for_url(re.compile(r".*f\.utm_source=fb.*"))
        screenshots.take(page, "fb-by-sub1")
        assert cells(page, 0)[:2] == ["zoneA", "2"] and cells(page, 1)[:2] == ["zoneB", "1"]
        assert cells(page, 2)[0].startswith("Total") and cells(page, 2)[1] == "3"
        assert "utm_source: fb" in page.text_content("nav.crumbs")
        page.click("nav.crumbs a:has-text('All')")
        assert cells(page, 0)[:2] == ["fb", "3"]

        # the time zone: the same clicks by hour move nine hours later in Tokyo
        page.select_option("#g1", "hour")
        page.select_option("#g2", "")
        page.click("button:has-text('Show')")
        hours = [cells(page, n)[0] for n in range(page.locator("#report tbody tr").count() - 1)]
        assert now.strftime("%Y-%m-%d %H:00") in hours
        page.select_option("#tz", "Asia/Tokyo")
        page.select_option("#preset", "custom")
        page.fill("input[name=from]", (now - datetime.timedelta(days=1)).date().isoformat())
        page.fill("input[name=to]", (now + datetime.timedelta(days=1)).date().isoformat())
        page.click("button:has-text('Show')")
        screenshots.take(page, "tokyo")
        assert page.text_content("#zone").strip() == "Asia/Tokyo"
        tokyo = (now + datetime.timedelta(hours=9)).strftime("%Y-%m-%d %H:00")
        assert tokyo in [cells(page, n)[0] for n in range(page.locator("#report tbody tr").count() - 1)]

        # the comparison with the previous period (nothing before: the previous figures are 0)
        page.select_option("#g1", "utm_source")
        page.check("#compare")
        page.click("button:has-text('Show')")
        screenshots.take(page, "compare")
        assert "compared with the 3 days before" in page.text_content("#period")
        assert page.locator("#report tbody tr").first.locator(".prev").first.inner_text().strip() == "0"

        # a cost update: 6 spread over the four clicks of the period
        page.click("#costs summary")
        page.fill("#costs input[name=amount]", "6")
        page.click("#costs button:has-text('Spread the cost')")
        page.wait_for_load_state()
        screenshots.take(page, "cost-updated")
        assert "Cost updated: 6.00 USD spread over 4 clicks." in page.text_content("main")
        costs = {cells(page, n)[0]: cells(page, n)[5].split()[0] for n in range(3)}
        assert costs == {"fb": "4.50", "tt": "1.50", "Total": "6.00"}
        page.goto("/flows?sort=today.cost")
        screenshots.take(page, "flows")
        row = page.locator("#flows tbody tr").first
        assert "Browser report" in row.inner_text() and "6.00" in row.inner_text()
    assert page.outside == []
