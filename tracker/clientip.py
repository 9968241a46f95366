"""The client's IP address behind a known number of trusted proxies."""
import ipaddress


def client_ip(remote_addr, forwarded_for, trusted_proxies):
    """The address of the client: ``remote_addr``, or the hop of ``X-Forwarded-For`` that the
    ``trusted_proxies`` nearest proxies vouch for. Anything unparsable falls back to ``remote_addr``.
    """
    remote = remote_addr or ""
    if trusted_proxies <= 0 or not forwarded_for:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if not hops:
        return remote
    candidate = hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
