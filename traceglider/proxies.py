"""Which peers may tell us the client's address: the parsed `TG_TRUSTED_PROXIES`.

The setting is one of
- `loopback` (the default): a reverse proxy on the same host (127.0.0.0/8, ::1), as
  uvicorn trusts by default, so nginx or Caddy in front of `serve` works unchanged;
- a comma-separated list of addresses and networks (`10.0.0.0/8, 192.168.1.5`,
  and `loopback` may be one of them): those peers are proxies;
- a whole number N: the last N hops of `X-Forwarded-For` are ours, whoever the peer
  is (a load balancer chain whose addresses are not known in advance); `0` trusts
  nobody and always uses the socket address.

With networks, the client is found as nginx's `real_ip_recursive` does: from the
right of `X-Forwarded-For`, skipping every hop that is itself a trusted proxy; the
first one that is not is the client. A client's own entries sit to its left and are
never believed. A leaf module: it imports nothing from the package.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger("traceglider.ingest")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# Where proxies and load balancers usually sit: RFC 1918, shared (100.64/10), ULA, link-local.
PROXY_RANGES = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "fc00::/7", "fe80::/10"))


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 from dual-stack sockets
    return address


def is_private_peer(text: str | None) -> bool:
    """A peer in a private or link-local range: likely a proxy (said without the address)."""
    address = _address(text or "")
    return address is not None and any(address in network for network in PROXY_RANGES)


class TrustedProxies:
    """`TG_TRUSTED_PROXIES`, parsed. `str()` gives the setting back, so it can be passed
    to worker processes through the environment."""

    def __init__(self, spec: str) -> None:
        self.spec = ",".join(part.strip() for part in str(spec).split(",") if part.strip()) or "0"
        self.count = 0
        self.networks: tuple[Network, ...] = ()
        if self.spec.isdigit():
            self.count = int(self.spec)
            return
        networks: list[Network] = []
        for part in self.spec.split(","):
            if part.lower() == "loopback":
                networks += LOOPBACK
                continue
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(
                    f"{part!r} is not an address or network; use 'loopback', addresses and "
                    "CIDR networks (comma-separated), or a number of proxies") from None
        self.networks = tuple(networks)

    def __str__(self) -> str:
        return self.spec

    def __repr__(self) -> str:
        return f"TrustedProxies({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrustedProxies) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    @property
    def any(self) -> bool:
        return bool(self.count or self.networks)

    def trusts(self, peer: str | None) -> bool:
        """Whether headers from this peer about the client (X-Forwarded-For and -Proto)
        are believed."""
        if self.count:
            return True
        if not self.networks or not peer:
            return False
        return self._trusted_address(peer)

    def _trusted_address(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: the socket peer, or what our proxies say it is."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        hops = [hop for hop in hops if hop]
        if self.count:
            return hops[-self.count] if len(hops) >= self.count else peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                # Not an address at all ("unknown", garbage): the chain ends here and
                # nothing to its left can be believed either.
                return peer
            if not any(address in network for network in self.networks):
                return str(address)
        return hops[0] if hops else peer


DEFAULT = TrustedProxies("loopback")


def is_secure(request: Request, proxies: TrustedProxies) -> bool:
    """Whether the visitor's connection was HTTPS: ours, or a trusted proxy's says so."""
    peer = request.client.host if request.client else None
    return secure_scheme(request.scope.get("scheme"), peer, request.headers.get("x-forwarded-proto"), proxies)


def secure_scheme(scheme: str | None, peer: str | None, forwarded_proto: str | None,
                  proxies: TrustedProxies) -> bool:
    if scheme == "https":  # not request.url: building it is costly
        return True
    return forwarded_proto is not None and forwarded_proto.lower() == "https" and proxies.trusts(peer)


class ForwardedWatch:
    """Counts requests whose X-Forwarded-For was ignored because the peer is not a
    trusted proxy, and says so once in the log: behind a proxy that is not trusted,
    every visitor would look like the proxy. Neither the log nor /healthz names the
    address (it may be a visitor's)."""

    def __init__(self, proxies: TrustedProxies) -> None:
        self.proxies = proxies
        self.ignored = 0
        self.private_peer = False  # one ignored peer was in a private network

    def ignore(self, peer: str | None) -> None:
        self.ignored += 1
        if self.ignored == 1:
            self.private_peer = is_private_peer(peer)
            log.warning("%s", self.message())

    def message(self) -> str:
        where = "a private network" if self.private_peer else "a public address"
        return (f"X-Forwarded-For is ignored: it comes from a peer in {where} that is not a "
                f"trusted proxy (TG_TRUSTED_PROXIES={self.proxies}); if a reverse proxy in "
                "front of the collector adds it, set TG_TRUSTED_PROXIES to that proxy's "
                "address or network, or visitors are counted by the proxy's address")

    def status(self) -> dict[str, Any]:
        return {"trusted_proxies": str(self.proxies), "ignored_forwarded_for": self.ignored,
                "warning": self.message() if self.ignored else None}


def client_address(peer: str | None, forwarded: str | None, proxies: TrustedProxies,
                   watch: ForwardedWatch | None = None) -> str | None:
    """The socket peer, or the client address our trusted proxies report."""
    if forwarded and watch is not None and not proxies.trusts(peer):
        watch.ignore(peer)
    return proxies.client(peer, forwarded)


def client_ip(request: Request, proxies: TrustedProxies,
              watch: ForwardedWatch | None = None) -> str | None:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), proxies, watch)
