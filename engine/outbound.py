"""Outbound HTTP made on behalf of flows and plugins goes to public addresses only (no SSRF).

A flow author chooses the URL of ``action.webhook`` and of plugin HTTP calls; without a guard that
URL could be the Temporal UI on loopback, a database on the private network or the cloud's metadata
service. The guard:

- resolves the host itself (IP literals in every spelling — ``2130706433``, ``0x7f.1``, ``0177.0.0.1``
  — are read as the address they mean, as the C library would) and refuses the request if **any**
  address is not public: loopback, private (RFC 1918, IPv6 ULA), link-local (so the metadata service
  at 169.254.169.254 and fd00:ec2::254), carrier-grade NAT (100.64.0.0/10, where Alibaba Cloud's
  metadata service 100.100.100.200 sits), multicast, reserved, unspecified, documentation and
  benchmarking ranges; IPv6 addresses that embed an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``,
  IPv4-compatible, 6to4, NAT64, Teredo) are judged by the IPv4 address inside;
- then connects to the address it checked, never resolving again (no DNS-rebinding gap), while TLS
  still verifies the certificate against the host name;
- does this for every connection, so every redirect hop is checked the same way;
- ignores proxy environment variables (a proxy would resolve the name out of its sight).

Operators admit internal endpoints on purpose with ``TIDEFLOW_OUTBOUND_ALLOW``: a comma-separated list
of networks (``10.20.0.0/16``, ``127.0.0.1/32``), host names (``crm.internal``) and domain suffixes
(``.corp.example``). An allowed host name is connected to whatever it resolves to.

:class:`OutboundRefused` is deliberately not an ``httpx.HTTPError``: a refused address is a
configuration problem, never worth a retry.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from engine.settings import get_settings
from engine.text import N_, Msg, verbatim

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: ranges ``is_global`` does not exclude but a flow has no business calling
_EXTRA_REFUSED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("100.64.0.0/10"), N_("carrier-grade NAT (cloud metadata services live here)")),
    (ipaddress.ip_network("192.88.99.0/24"), N_("6to4 relay anycast")),
    (ipaddress.ip_network("192.0.0.0/24"), N_("IETF protocol assignments")),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"^[0-9a-fA-FxX.]+$")


class OutboundRefused(Exception):
    """A request to an address flows may not reach; the message (a :class:`~wording.Msg`, so an action's failure,
    an image fetch's refusal and a page say it in the reader's language) names the host, address and why."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = int(address)
    if packed >> 32 == 0 and packed > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        return ipaddress.IPv4Address(packed)
    return None


def refusal(address: IPAddress) -> Msg | None:
    """Why a flow may not connect to ``address`` (loopback, private …), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            inside = refusal(inner)
            return Msg("%(why)s (inside the IPv6 address)", why=inside) if inside else None
    checks: list[tuple[bool, str]] = [
        (address.is_unspecified, N_("the unspecified address")),
        (address.is_loopback, N_("loopback (this machine)")),
        (address.is_link_local, N_("link-local (cloud metadata services live here)")),
        (address.is_multicast, N_("multicast")),
        (address.is_private, N_("a private network")),
        (address.is_reserved, N_("reserved")),
    ]
    for hit, why in checks:
        if hit:
            return Msg(why)
    for network, why in _EXTRA_REFUSED:
        if address.version == network.version and address in network:
            return Msg(why)
    if not address.is_global:
        return Msg("not a public address")
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address an IP literal means, in every spelling the C resolver accepts (``[::1]``,
    ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``), or None for a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(text) and any(c.isdigit() for c in text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives for ``host`` (what a connection would use)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


#: the resolver guards use unless given one (tests replace it: they never look a name up for real)
resolve_host: Callable[[str, int], list[str]] = system_resolver


@dataclass
class Allowlist:
    """Networks and host names an operator admits on purpose (``TIDEFLOW_OUTBOUND_ALLOW``)."""

    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)
    suffixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        allow = cls()
        suffixes: list[str] = []
        for raw in text.split(","):
            item = raw.strip().lower()
            if not item:
                continue
            if item.startswith(".") or item.startswith("*."):
                suffixes.append("." + item.lstrip("*."))
                continue
            try:
                allow.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                allow.hosts.add(item.rstrip("."))
        allow.suffixes = tuple(suffixes)
        return allow

    def admits_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or bool(self.suffixes and name.endswith(self.suffixes))

    def admits(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)


@dataclass
class OutboundGuard:
    """Decides, for a host and port, which address to connect to — or refuses."""

    allow: Allowlist = field(default_factory=Allowlist)
    resolver: Callable[[str, int], list[str]] | None = None

    @classmethod
    def from_settings(cls) -> OutboundGuard:
        return cls(Allowlist.parse(get_settings().outbound_allow))

    def check(self, host: str, port: int) -> str:
        """The address to connect to for ``host:port``; :class:`OutboundRefused` if any address it has
        is not allowed."""
        literal = literal_ip(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            if self.allow.admits_host(host):
                return host  # admitted by name on purpose: connect as the system resolves it
            try:
                resolver = self.resolver or resolve_host
                addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
            except (OSError, UnicodeError) as exc:
                raise OutboundRefused(Msg("cannot resolve host %(host)s: %(detail)s", host=repr(host),
                                          detail=verbatim(str(exc)))) from None
            if not addresses:
                raise OutboundRefused(Msg("host %(host)s has no address", host=repr(host)))
        for address in addresses:
            why = refusal(address)
            if why and not self.allow.admits(address):
                what = (Msg("%(host)s is %(address)s", host=repr(host), address=str(address)) if literal is not None
                        else Msg("%(host)s resolves to %(address)s", host=repr(host), address=str(address)))
                raise OutboundRefused(Msg("%(what)s, %(why)s: flows may only call public addresses (an operator can "
                                          "allow internal endpoints with TIDEFLOW_OUTBOUND_ALLOW)", what=what, why=why))
        return str(addresses[0])


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the guard checked, resolving each host once."""

    def __init__(self, guard: OutboundGuard, connect: Callable[..., httpcore.NetworkStream] | None = None) -> None:
        self.guard = guard
        self._connect = connect or super().connect_tcp

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        address = self.guard.check(host, port)
        return self._connect(address, port, timeout=timeout, local_address=local_address,
                             socket_options=socket_options)


class GuardedTransport(httpx.HTTPTransport):
    """An ``httpx`` transport whose every connection goes through :class:`OutboundGuard`."""

    def __init__(self, guard: OutboundGuard | None = None, *, verify: Any = True,
                 limits: httpx.Limits = httpx.Limits(max_connections=20, max_keepalive_connections=5),
                 connect: Callable[..., httpcore.NetworkStream] | None = None) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self.guard = guard or OutboundGuard.from_settings()
        ssl_context = self._pool._ssl_context  # what httpx built from ``verify``
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(self.guard, connect))


def guarded_client(guard: OutboundGuard | None = None, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` for requests made on behalf of flows and plugins: proxies from the environment
    are ignored and every connection (redirects included) is checked by the guard."""
    kwargs.pop("trust_env", None)
    return httpx.Client(transport=GuardedTransport(guard), trust_env=False, **kwargs)
