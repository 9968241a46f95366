"""``tracker geoip update``: download MaxMind's GeoLite2 databases into the GeoIP folder,
each unpacked from its archive and checked before it replaces the old file."""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
from typing import Iterable

import maxminddb
import requests

DOWNLOAD_TIMEOUT = (15, 300)  # (connect, read) seconds
_CHUNK = 1 << 16

logger = logging.getLogger(__name__)


class GeoIPDownloadError(Exception):
    """A MaxMind database could not be downloaded or unpacked."""


def download_databases(
    account_id: str,
    license_key: str,
    directory: str | os.PathLike,
    editions: Iterable[str] = ("GeoLite2-City", "GeoLite2-ASN"),
    base_url: str = "https://download.maxmind.com/geoip/databases",
    session: requests.Session | None = None,
) -> list[str]:
    """Download MaxMind editions into ``directory/<edition>.mmdb``; return the paths written.

    Raises GeoIPDownloadError on HTTP errors, network errors or bad archives.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    session = session or requests.Session()
    written = []
    for edition in editions:
        url = f"{base_url.rstrip('/')}/{edition}/download?suffix=tar.gz"
        archive = _fetch(session, url, (str(account_id), license_key), edition, directory)
        try:
            written.append(_install_mmdb(archive, edition, directory))
        finally:
            _unlink_quietly(archive)
        logger.info("Downloaded %s to %s", edition, written[-1])
    return written


def _fetch(session: requests.Session, url: str, auth: tuple[str, str], edition: str, directory: str) -> str:
    """Stream ``url`` to a temp file in ``directory`` and return its path."""
    try:
        with session.get(url, auth=auth, timeout=DOWNLOAD_TIMEOUT, stream=True, allow_redirects=True) as resp:
            if resp.status_code != 200:
                raise GeoIPDownloadError(_http_error_message(edition, resp))
            fd, tmp = tempfile.mkstemp(prefix=f".{edition}.", suffix=".tar.gz.part", dir=directory)
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in resp.iter_content(_CHUNK):
                        out.write(chunk)
            except BaseException:
                _unlink_quietly(tmp)
                raise
            return tmp
    except requests.RequestException as exc:
        raise GeoIPDownloadError(f"Downloading {edition} failed: {exc}") from exc


def _http_error_message(edition: str, resp: requests.Response) -> str:
    try:
        body = next(resp.iter_content(200), b"")[:200]
    except Exception:
        body = b""
    text = body.decode("utf-8", "replace").strip()
    msg = f"Downloading {edition} failed: HTTP {resp.status_code}: {text}"
    if resp.status_code == 401:
        msg += " (bad credentials: check MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY)"
    elif resp.status_code == 403:
        msg += " (the account may not have access to this edition)"
    return msg


def _install_mmdb(archive: str, edition: str, directory: str) -> str:
    """Extract the single .mmdb of ``archive`` to ``directory/<edition>.mmdb`` atomically."""
    target = os.path.join(directory, f"{edition}.mmdb")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [
                m for m in tar.getmembers() if m.isfile() and os.path.basename(m.name).endswith(".mmdb")
            ]
            if len(members) != 1:
                raise GeoIPDownloadError(
                    f"Expected one .mmdb file in the {edition} archive, found {len(members)}"
                )
            # Only the member's content is used; its path is never touched on disk.
            source = tar.extractfile(members[0])
            fd, tmp = tempfile.mkstemp(prefix=f".{edition}.", suffix=".mmdb.part", dir=directory)
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                _validate_mmdb(tmp, edition)
                os.replace(tmp, target)
            except BaseException:
                _unlink_quietly(tmp)
                raise
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GeoIPDownloadError(f"Cannot unpack the {edition} archive: {exc}") from exc
    return target


def _validate_mmdb(path: str, edition: str) -> None:
    try:
        with maxminddb.open_database(path) as reader:
            reader.metadata()
    except Exception as exc:
        raise GeoIPDownloadError(f"The downloaded {edition} is not a valid .mmdb: {exc}") from exc


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
