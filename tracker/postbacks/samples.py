"""Sample values for previews and template checks when no real click or conversion is at
hand: a value in every field, so a template's every token renders."""

import datetime
from decimal import Decimal

from ..models import Click, Conversion, Flow

SAMPLE_TIME = datetime.datetime(2024, 5, 1, 12, 0, 0)


def sample_flow():
    """An unsaved flow with typical values, for previews without a real one."""
    return Flow(
        id=1,
        name="Sample flow",
        key="SampleKey1",
        currency="USD",
        payout=Decimal("12.50"),
        offer_url="https://offer.example/lp?cid={clickid}",
    )


def sample_click(flow=None):
    """An unsaved click with a value in every field, for previews and template checks."""
    flow = flow or sample_flow()
    return Click(
        click_id="0lvn2p8q0a1b2c3d4e5f6g7h8",
        flow=flow,
        created_at=SAMPLE_TIME,
        ip="203.0.113.7",
        referrer="https://news.example/article",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15",
        language="en-US",
        country="US",
        country_name="United States",
        region="California",
        city="Mountain View",
        zip="94043",
        isp="Example ISP",
        asn=64500,
        carrier="",
        connection_type="Cable/DSL",
        device_type="mobile",
        brand="Apple",
        model="iPhone",
        os="iOS",
        os_version="17.5",
        browser="Mobile Safari",
        browser_version="17.5",
        external_id="ts-click-123",
        sub1="sub1",
        sub2="sub2",
        sub3="",
        sub4="",
        sub5="",
        utm_source="facebook",
        utm_medium="cpc",
        utm_campaign="spring",
        utm_term="",
        utm_content="",
        cost=Decimal("0.35"),
        params={"utm_source": "facebook", "clickid": "ts-click-123", "ScCid": "sc-click-123"},
        cookies={
            "_fbc": "fb.1.1714564800.IwAR0sample",
            "_fbp": "fb.1.1714564800.123456789",
            "ttclid": "E.C.P.sample",
            "_ttp": "ttp-sample",
            "_scid": "scid-sample",
        },
    )


def sample_conversion(click=None, flow=None):
    """An unsaved conversion with lead data, for previews and template checks."""
    click = click or sample_click(flow)
    return Conversion(
        id=1,
        click=click,
        flow_id=click.flow_id,
        event="conversion",
        payout=Decimal("12.50"),
        currency="USD",
        status="approved",
        txid="tx-1001",
        created_at=SAMPLE_TIME,
        updated_at=SAMPLE_TIME,
        data={
            "email": "john.smith@example.com",
            "phone": "+1 (650) 555-1212",
            "first_name": "John",
            "last_name": "Smith",
            "gender": "m",
            "dob": "1990-01-31",
            "advertisername": "Advertiser",
            "contact": {"firstName": "John", "lastName": "Smith", "email": "john.smith@example.com"},
        },
    )
