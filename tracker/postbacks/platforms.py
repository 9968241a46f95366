"""User-data normalization and hashing for the ad platforms' server-side payloads.

Meta (graph.facebook.com), Snapchat (tr.snapchat.com) and TikTok (business-api.tiktok.com)
want customer information normalized by their own rules and SHA-256 hashed. ``protect_body``
does that to a rendered request body whatever its template says, so a seed's payload pasted
verbatim never sends raw PII, and user fields left empty are left out. Phone numbers go
through ``phonenumbers`` (Google's libphonenumber), completed from the click's country.

The rule applied per platform and field, and the documentation it comes from, are in the
README ("Ad platforms: what is hashed and how"). This module imports nothing of the tracker.
"""

import copy
import datetime
import functools
import hashlib
import json
import re
import unicodedata
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

PLATFORM_HOSTS = {
    "graph.facebook.com": "meta",
    "tr.snapchat.com": "snapchat",
    "business-api.tiktok.com": "tiktok",
}

META_FIELDS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id")
TIKTOK_FIELDS = ("email", "phone_number", "phone", "external_id")

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_EMAIL = re.compile(r".+@.+\..+")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_US_ZIP_PLUS4 = re.compile(r"(\d{5})[\s-]\d{4}")
_US_ZIP9 = re.compile(r"(\d{5})\d{4}")
_YEAR_FIRST_DATE = re.compile(r"(?P<year>\d{4})(?P<sep>[-/.])(?P<first>\d{1,2})(?P=sep)(?P<second>\d{1,2})")
_COMPACT_DATE = re.compile(r"(?P<year>\d{4})(?P<first>\d{2})(?P<second>\d{2})")
_YEAR_LAST_DATE = re.compile(r"(?P<first>\d{1,2})(?P<sep>[-/.])(?P<second>\d{1,2})(?P=sep)(?P<year>\d{4})")

# fmt: off
US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar",
    "california": "ca", "colorado": "co", "connecticut": "ct", "delaware": "de",
    "districtofcolumbia": "dc", "florida": "fl", "georgia": "ga", "hawaii": "hi",
    "idaho": "id", "illinois": "il", "indiana": "in", "iowa": "ia",
    "kansas": "ks", "kentucky": "ky", "louisiana": "la", "maine": "me",
    "maryland": "md", "massachusetts": "ma", "michigan": "mi", "minnesota": "mn",
    "mississippi": "ms", "missouri": "mo", "montana": "mt", "nebraska": "ne",
    "nevada": "nv", "newhampshire": "nh", "newjersey": "nj", "newmexico": "nm",
    "newyork": "ny", "northcarolina": "nc", "northdakota": "nd", "ohio": "oh",
    "oklahoma": "ok", "oregon": "or", "pennsylvania": "pa", "rhodeisland": "ri",
    "southcarolina": "sc", "southdakota": "sd", "tennessee": "tn", "texas": "tx",
    "utah": "ut", "vermont": "vt", "virginia": "va", "washington": "wa",
    "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
    "americansamoa": "as", "guam": "gu", "northernmarianaislands": "mp",
    "puertorico": "pr", "usvirginislands": "vi", "virginislands": "vi",
}

CANADIAN_PROVINCES = {
    "alberta": "ab", "britishcolumbia": "bc", "manitoba": "mb", "newbrunswick": "nb",
    "newfoundlandandlabrador": "nl", "newfoundland": "nl", "novascotia": "ns",
    "northwestterritories": "nt", "nunavut": "nu", "ontario": "on",
    "princeedwardisland": "pe", "quebec": "qc", "saskatchewan": "sk", "yukon": "yt",
}

COUNTRY_ALIASES = {
    "usa": "us", "america": "us", "unitedstatesofamerica": "us", "uk": "gb",
    "gbr": "gb", "greatbritain": "gb", "england": "gb", "scotland": "gb",
    "wales": "gb", "northernireland": "gb", "deu": "de", "fra": "fr",
    "can": "ca", "aus": "au", "rus": "ru", "ukr": "ua", "esp": "es", "ita": "it",
}

GENDERS = {
    "f": "f", "female": "f", "woman": "f",
    "m": "m", "male": "m", "man": "m",
}
# fmt: on


def platform_of(url):
    """Return "meta", "snapchat" or "tiktok" for a platform URL, else None.

    The host is compared case-insensitively; a URL without a scheme
    ("graph.facebook.com/v19.0/...") is accepted too.
    """
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    if "://" not in url:
        url = "//" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    return PLATFORM_HOSTS.get(host.rstrip("."))


def phone_e164(value, default_country=""):
    """Return the number in E.164 ("+16505551212"), or '' when not plausible.

    ``default_country`` is an ISO 3166-1 alpha-2 code in any case ("us",
    "GB"; names and "uk" are accepted too) used for numbers written without
    a country code.  Decisions:

    * A number starting with "+" is read as international; "00" (the usual
      international prefix) is read like "+".
    * Otherwise the number is first read as a national number of
      ``default_country``; "16505551212" with "US" is +16505551212, because
      libphonenumber strips a leading country code that fits the region.
    * When that reading is not a valid number (or there is no default
      country), the digits are tried as a number that already carries its
      country code without "+": "447911123456" gives +447911123456.  This
      guess is accepted only when libphonenumber says the result is a valid
      number, so a bare national number with no country is rejected rather
      than attributed to the wrong country.
    * A national reading that is not valid but has a possible full length
      is still accepted (new number ranges lag behind the metadata); one
      that is only dialable locally (7-digit US numbers) is rejected.
    """
    text = _plain(value)
    if not any(ch.isdigit() for ch in text):
        return ""
    region = _region(default_country)
    if text.startswith("+"):
        number = _parse(text, None)
        return _format(number) if _acceptable(number) else ""
    national = _parse(text, region) if region else None
    if national is not None and phonenumbers.is_valid_number(national):
        return _format(national)
    international = _parse("+" + _international_digits(text), None)
    if international is not None and phonenumbers.is_valid_number(international):
        return _format(international)
    return _format(national) if _acceptable(national) else ""


def phone_digits(value, default_country=""):
    """Return the E.164 number without "+" ("16505551212"), or ''.

    This is the form Meta and Snapchat hash; the rules are those of
    ``phone_e164``.
    """
    return phone_e164(value, default_country).lstrip("+")


TEMPLATE_FILTERS = {"digits": phone_digits, "e164": phone_e164}


def normalize(platform, field, value, default_country=""):
    """Normalize one user-data value by ``platform``'s rules; '' if nothing remains.

    ``field`` is the platform's own key: "em", "ph", "fn", "ln", "ge", "db",
    "ct", "st", "zp", "country", "external_id" for "meta" and "snapchat";
    "email", "phone_number", "phone", "external_id" for "tiktok".
    ``default_country`` is the click's country, used to complete phone
    numbers and to recognise a 9-digit US ZIP code.  Numbers are normalized
    as their decimal text; None, booleans, containers and a template
    placeholder left unfilled ("{first_name}") give ''.
    Raises ValueError for an unknown platform or field.
    """
    rule = _rule(platform, field)
    text = _plain(value)
    if not text or _PLACEHOLDER.fullmatch(text):
        return ""
    return rule(text, default_country)


def hash_value(platform, field, value, default_country=""):
    """Return the SHA-256 hex digest of the normalized value.

    An empty value, or one that normalizes to nothing, gives '' (the caller
    drops the field).  A value that already is 64 hex characters is taken
    as hashed and kept, lowercased.
    """
    _rule(platform, field)
    text = _plain(value)
    if not text:
        return ""
    if _HEX64.fullmatch(text):
        return text.lower()
    normalized = normalize(platform, field, text, default_country)
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest() if normalized else ""


def protect_json(platform, data, default_country=""):
    """Return a copy of a parsed JSON body with every user-data field hashed.

    Meta and Snapchat: ``data[].user_data`` (and a root ``user_data``, which
    Snapchat also accepts).  TikTok: ``context.user`` (legacy, and
    ``batch[].context.user`` of its legacy batch call) and ``data[].user``
    (Events API 2.0).  A field holding a string is replaced by its hash; an
    array keeps its non-empty hashed items.  A field that ends up empty is
    removed.  Everything else (IP, user agent, fbc, fbp, click ids, ...) is
    left untouched.  ``data`` itself is not modified.
    """
    if platform not in ("meta", "snapchat", "tiktok"):
        raise ValueError(f"unknown platform: {platform!r}")
    if not isinstance(data, dict):
        return copy.deepcopy(data)
    result = copy.deepcopy(data)
    for user in _user_records(platform, result):
        _protect_record(platform, user, default_country)
    return result


def protect_body(url, method_kind, body, default_country=""):
    """Return the request body with its user data normalized and hashed.

    ``method_kind`` is "json" or "form".  A JSON body is re-serialized
    compactly, keeping key order.  In a form body, a ``data`` field holding
    a JSON array or object is protected as the body's ``data`` (for Meta,
    the list of events) and re-encoded; the other fields keep their exact
    text.  The body is returned unchanged for other hosts, when it cannot
    be parsed, or when it holds no user data to change.
    """
    platform = platform_of(url)
    if platform is None or not isinstance(body, str) or not body:
        return body
    if method_kind == "json":
        return _protect_json_text(platform, body, default_country)
    if method_kind == "form":
        return _protect_form(platform, body, default_country)
    return body


def _rule(platform, field):
    if platform in ("meta", "snapchat"):
        rules = _META_RULES
    elif platform == "tiktok":
        rules = _TIKTOK_RULES
    else:
        raise ValueError(f"unknown platform: {platform!r}")
    if field not in rules:
        raise ValueError(f"unknown {platform} user-data field: {field!r}")
    return rules[field]


def _plain(value):
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        return ""
    return unicodedata.normalize("NFC", value).strip()


def _email(text, _country):
    text = text.lower()
    return text if _EMAIL.fullmatch(text) else ""


def _name(text, _country):
    kept = "".join(ch for ch in text.lower() if _is_word_char(ch) or ch.isspace())
    return " ".join(kept.split())


def _letters(text, _country=""):
    return "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LM")


def _state(text, _country):
    key = _ascii_letters(text)
    return US_STATES.get(key) or CANADIAN_PROVINCES.get(key) or _letters(text)


def _zip(text, country):
    compact = "".join(text.split())
    match = _US_ZIP_PLUS4.fullmatch(text) or (_region(country) == "US" and _US_ZIP9.fullmatch(compact))
    if match:
        return match.group(1)
    return "".join(ch for ch in compact.lower() if ch.isalnum())


def _country_code(text, _country=""):
    key = _ascii_letters(text)
    if len(key) == 2:
        return COUNTRY_ALIASES.get(key, key)
    return COUNTRY_ALIASES.get(key) or _country_names().get(key, "")


def _gender(text, _country):
    return GENDERS.get(_letters(text), "")


def _date_of_birth(text, _country):
    parts = _date_parts(text.split()[0].split("T")[0])
    if parts is None:
        return ""
    year, month, day = parts
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        return ""
    if not 1900 <= year <= datetime.date.today().year:
        return ""
    return born.strftime("%Y%m%d")


def _date_parts(text):
    match = _YEAR_FIRST_DATE.fullmatch(text) or _COMPACT_DATE.fullmatch(text)
    if match:
        return int(match["year"]), int(match["first"]), int(match["second"])
    match = _YEAR_LAST_DATE.fullmatch(text)
    if not match:
        return None
    first, second, year = int(match["first"]), int(match["second"]), int(match["year"])
    month_first = match["sep"] == "/"
    if (month_first and first > 12) or (not month_first and second > 12):
        month_first = not month_first
    return (year, first, second) if month_first else (year, second, first)


def _external_id(text, _country):
    return text.lower()


def _meta_phone(text, country):
    return phone_digits(text, country)


def _tiktok_phone(text, country):
    return phone_e164(text, country)


_META_RULES = {
    "em": _email,
    "ph": _meta_phone,
    "fn": _name,
    "ln": _name,
    "ge": _gender,
    "db": _date_of_birth,
    "ct": _letters,
    "st": _state,
    "zp": _zip,
    "country": _country_code,
    "external_id": _external_id,
}

_TIKTOK_RULES = {
    "email": _email,
    "phone_number": _tiktok_phone,
    "phone": _tiktok_phone,
    "external_id": _external_id,
}


def _is_word_char(ch):
    return unicodedata.category(ch)[0] in "LMN"


def _ascii_letters(text):
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if unicodedata.category(ch)[0] == "L")


@functools.lru_cache(maxsize=1)
def _country_names():
    """Map country names in the languages phonenumbers ships to ISO codes."""
    try:
        from phonenumbers.geodata.locale import LOCALE_DATA
    except ImportError:  # the data module is not public API; degrade gracefully
        return {}
    names = {}
    for region, by_language in LOCALE_DATA.items():
        for name in by_language.values():
            if name and not name.startswith("*"):
                names.setdefault(_ascii_letters(name), region.lower())
    return names


def _region(country):
    code = _country_code(_plain(country)) if country else ""
    code = code.upper()
    return code if code in phonenumbers.SUPPORTED_REGIONS else ""


def _parse(text, region):
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def _international_digits(text):
    digits = re.sub(r"\D", "", text)
    return digits[2:] if digits.startswith("00") else digits


def _acceptable(number):
    if number is None:
        return False
    if phonenumbers.is_valid_number(number):
        return True
    return phonenumbers.is_possible_number_with_reason(number) == ValidationResult.IS_POSSIBLE


def _format(number):
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _user_records(platform, body):
    events = _as_list(body.get("data"))
    if platform == "tiktok":
        records = [_dig(body, "context", "user")]
        records += [_dig(item, "context", "user") for item in _as_list(body.get("batch"))]
        records += [_dig(event, "user") for event in events]
    else:
        records = [body.get("user_data")] + [_dig(event, "user_data") for event in events]
    return [record for record in records if isinstance(record, dict)]


def _as_list(value):
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def _dig(value, *keys):
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _protect_record(platform, user, default_country):
    fields = TIKTOK_FIELDS if platform == "tiktok" else META_FIELDS
    country = default_country or _record_country(platform, user)
    for field in fields:
        if field not in user:
            continue
        protected = _protect_value(platform, field, user[field], country)
        if protected:
            user[field] = protected
        else:
            del user[field]


def _record_country(platform, user):
    """The record's own plain-text country, used when the click has none."""
    if platform == "tiktok":
        return ""
    value = user.get("country")
    return value if isinstance(value, str) and not _HEX64.fullmatch(value.strip()) else ""


def _protect_value(platform, field, value, country):
    if isinstance(value, list):
        hashed = (hash_value(platform, field, item, country) for item in value)
        return [item for item in hashed if item]
    return hash_value(platform, field, value, country)


def _protect_json_text(platform, body, default_country):
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if not isinstance(parsed, dict):
        return body
    protected = protect_json(platform, parsed, default_country)
    return body if protected == parsed else _dumps(protected)


def _protect_form(platform, body, default_country):
    pieces = body.split("&")
    for index, piece in enumerate(pieces):
        key, separator, raw = piece.partition("=")
        if separator and unquote_plus(key) == "data":
            pieces[index] = key + "=" + _protect_form_data(platform, raw, default_country)
    return "&".join(pieces)


def _protect_form_data(platform, raw, default_country):
    try:
        parsed = json.loads(unquote_plus(raw))
    except ValueError:
        return raw
    if not isinstance(parsed, (list, dict)):
        return raw
    protected = protect_json(platform, {"data": parsed}, default_country)["data"]
    if protected == parsed:
        return raw
    return _form_encode(_dumps(protected), like=raw)


def _form_encode(text, like):
    """Encode like the original value: fully percent-encoded, or with JSON's own
    punctuation left raw.

    A form encoder always escapes "{" and "[", so seeing them means the template
    pasted the JSON raw (as AlterCPA's pixel does); it is re-emitted that way,
    the values inside percent-encoded as the template renderer encodes them.
    """
    if "{" not in like and "[" not in like:
        return quote_plus(text)
    return quote(text, safe='{}[]":,')


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
