"""HTTP GETs that an answer cannot steer: allow-listed origins, public addresses, a deadline.

The fetcher's only way out to the network. Inside a `Client` (one fetch):

- a URL is checked as the HTTP library will connect to it: requests prepares it, and its
  scheme, host and port, read by urllib3's parser and by the standard library's (which
  requests uses to pick the connection), must agree and be on the allow-list; URLs with
  user info are refused. Redirects are not followed here: the caller checks each target.
- every connection checks its own host and port against the allow-list again, resolves
  the name once, refuses it if any address it resolves to is not public (loopback,
  link-local including 169.254.169.254, RFC 1918 and fc00::/7, carrier-grade NAT, unspecified,
  multicast, reserved, documentation, or an IPv6 form of one of these) unless the address is
  in an allowed network, and connects to the address it checked, never resolving again (so
  DNS rebinding cannot slip in between). TLS still sends and verifies the host's name.
- a deadline covers everything: connecting, retries and their back-off, redirects, and
  reading the body. Timeouts are cut to the time left, and a watchdog shuts the sockets
  down when it passes, so a source that trickles a byte now and then is cut off too.
- no proxy, .netrc or other setting is taken from the environment.
- the HTTP library's log lines never carry a request's path or query (where a URL's keys are): while
  a Client is in force, each target it sent is replaced in urllib3's records by the Client's label
  (the fetcher's: the map source's name), so they name the fetch by its label, origin and status.

Why not a library: advocate is unmaintained (2020). requests-hardened (Saleor, maintained)
pins the first resolved address through the pool key and has a loopback switch, but
checks only that first address, has no notion of allowed ports, networks or a total
deadline, and would be one more dependency in the Lambda layer; the part that matters here
is one `_new_conn`, below.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import parse_url
from urllib3.util.connection import allowed_gai_family
from urllib3.util.retry import Retry

from .errors import PermanentError
from .redaction import redact

DEFAULT_PORTS = {"http": 80, "https": 443}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names are resolved through this, so tests can stand in for DNS.
getaddrinfo = socket.getaddrinfo

# Not public, beyond what ipaddress's is_global already says.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "64:ff9b:1::/48")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class Refused(PermanentError):
    """The URL, its origin or the address its host resolves to is not allowed."""


class DeadlineExceeded(PermanentError):
    """The fetch's deadline passed."""


def public(address: Address) -> bool:
    """Whether `address` is an ordinary public unicast address (its embedded IPv4 one too)."""
    if address.version == 6:
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo:
            embedded.extend(address.teredo)
        if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(v4 is not None and not public(v4) for v4 in embedded):
            return False
        if address.ipv4_mapped is not None:
            return True  # judged by its IPv4 address alone
        if address.is_site_local:
            return False
    return not (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in network for network in _NOT_PUBLIC if network.version == address.version)
    )


class Policy(NamedTuple):
    """What a fetch may connect to."""

    hosts: frozenset[tuple[str, int | None]]  # (host, port); None: the scheme's own port
    origins: frozenset[tuple[str, str, int]] = frozenset()  # (scheme, host, port) allowed as well
    networks: tuple[Network, ...] = ()  # addresses allowed although not public

    def allows(self, scheme: str, host: str, port: int | None) -> bool:
        if scheme not in DEFAULT_PORTS:
            return False
        host = host.strip("[]").lower()
        port = port or DEFAULT_PORTS[scheme]
        return (
            (host, port) in self.hosts
            or ((host, None) in self.hosts and port == DEFAULT_PORTS[scheme])
            or (scheme, host, port) in self.origins
        )

    def allows_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if any(ip.version == network.version and ip in network for network in self.networks):
            return True
        if ip.version == 6 and ip.ipv4_mapped is not None:
            v4 = ip.ipv4_mapped
            if any(network.version == 4 and v4 in network for network in self.networks):
                return True
        return public(ip)


class Origin(NamedTuple):
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin(url: str) -> Origin:
    """The scheme, host and port `url` (as requests prepared it) connects to. Refused when
    the parsers disagree, the URL has user info, or it is not http(s)."""
    try:
        ours, theirs = parse_url(url), urlsplit(url)
        their_port = theirs.port
    except ValueError:
        raise Refused("the URL cannot be read") from None
    scheme = (ours.scheme or "").lower()
    if scheme not in DEFAULT_PORTS:
        raise Refused(f"the URL's scheme {scheme or '(none)'!r} is not http or https")
    if ours.auth or theirs.username is not None or theirs.password is not None:
        raise Refused("the URL carries user info")
    host = (ours.host or "").strip("[]").lower()
    port = ours.port or DEFAULT_PORTS[scheme]
    if (
        not host
        or theirs.scheme.lower() != scheme
        or (theirs.hostname or "").lower() != host
        or (their_port or DEFAULT_PORTS[scheme]) != port
    ):
        raise Refused("the URL's host reads differently to different parsers")
    return Origin(scheme, host, port)


_current: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("safehttp_guard", default=None)


class Guard:
    """One fetch's policy and deadline; the connections made while it is entered obey it."""

    def __init__(self, policy: Policy, seconds: float, label: str = "a fetch"):
        self.policy = policy
        self.seconds = seconds
        self.label = label  # what log lines call a target this fetch sent
        self.targets: set[str] = set()  # the paths and queries sent (urllib3 logs them)
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._closed = False
        self._timer: threading.Timer | None = None
        self._token: contextvars.Token[Guard | None] | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.fired or self.remaining() <= 0

    def check(self, needed: float = 0.0) -> None:
        if self.fired or self.remaining() <= needed:
            raise DeadlineExceeded(f"the fetch deadline of {self.seconds:g} s passed")

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down when the deadline passes (a duplicate of it, which stays valid
        when TLS takes the original over)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._watched.append(sock.dup())
            except OSError:
                pass
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        for sock in self._watched:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> Guard:
        self._token = _current.set(self)
        self._timer = threading.Timer(max(0.0, self.remaining()), self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            for sock in self._watched:
                sock.close()
            self._watched.clear()
        if self._token is not None:
            _current.reset(self._token)


class TargetFilter(logging.Filter):
    """Replaces, in a record logged while a Client is in force, each target (path and query) it sent
    with its label: urllib3 logs `"GET /path?query HTTP/1.1" 200` and the path of a retried request.
    It goes first among its loggers' filters; a target another filter redacted first is found too."""

    def filter(self, record: logging.LogRecord) -> bool:
        guard = _current.get()
        if guard is None or not guard.targets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # logging will say what is wrong with it; nothing of ours to replace
            return True
        cleaned = message
        for target in sorted(guard.targets, key=len, reverse=True):
            for form in (target, redact(target)):
                cleaned = cleaned.replace(form, f"<{guard.label}>")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


TARGETS = TargetFilter()
# urllib3's loggers that name a request's target (a filter acts on the records of its own logger).
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager", "urllib3.connection")
for _name in URLLIB3_LOGGERS:
    if TARGETS not in logging.getLogger(_name).filters:
        logging.getLogger(_name).filters.insert(0, TARGETS)


_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


def _resolve(host: str, port: int, guard: Guard) -> list[Any]:
    """getaddrinfo, within the deadline: a resolver that hangs is left behind in its thread
    (getaddrinfo cannot be interrupted), and the fetch ends at its deadline all the same."""
    pending = _RESOLVER.submit(getaddrinfo, host, port, allowed_gai_family(), socket.SOCK_STREAM)
    try:
        return pending.result(timeout=max(guard.remaining(), 0.01))
    except FuturesTimeout:
        pending.cancel()
        guard.check()  # raises DeadlineExceeded
        raise


def _new_guarded_conn(conn: HTTPConnection, scheme: str) -> socket.socket:
    """A connection's socket, under the guard in force: its origin allowed, its name resolved
    once, every address public (or allowed), connected to a checked address."""
    guard = _current.get()
    if guard is None:
        raise Refused("connections are made only inside a safehttp.Client")
    host, port = conn.host.strip("[]").lower(), int(conn.port or DEFAULT_PORTS[scheme])
    where = Origin(scheme, host, port)
    if not guard.policy.allows(scheme, host, port):
        raise Refused(f"{where} is not on the fetch allow-list")
    guard.check()
    try:
        infos = _resolve(host, port, guard)
    except socket.gaierror as exc:
        raise NameResolutionError(host, conn, exc) from exc
    usable = [info for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not usable:
        raise NewConnectionError(conn, f"{host} resolves to no internet address")
    for *_, address in usable:
        if not guard.policy.allows_address(address[0]):
            raise Refused(f"{host} resolves to {address[0]}, which is not a public address")
    timeout = conn.timeout if isinstance(conn.timeout, (int, float)) else None
    error: Exception | None = None
    for family, kind, proto, _, address in usable:
        guard.check()
        sock = socket.socket(family, kind, proto)
        try:
            guard.watch(sock)
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            remaining = max(guard.remaining(), 0.01)  # the watchdog ends it if the deadline passes
            sock.settimeout(remaining if timeout is None else min(timeout, remaining))
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(address)
            return sock
        except TimeoutError:
            error = ConnectTimeoutError(conn, f"connecting to {where} timed out")
        except OSError as exc:
            error = NewConnectionError(conn, f"connecting to {where} failed: {exc.strerror or type(exc).__name__}")
        sock.close()
    assert error is not None
    raise error


class _HTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _new_guarded_conn(self, "http")


class _HTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _new_guarded_conn(self, "https")


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise Refused("the fetcher uses no proxy")


class _Retry(Retry):
    """urllib3's retries, whose back-off never sleeps past the deadline."""

    def sleep(self, response: Any = None) -> None:
        guard = _current.get()
        if guard is not None:
            guard.check(self.get_backoff_time())
        super().sleep(response)


class Client:
    """One fetch: `with Client(policy, ...) as client: client.get(url)`."""

    def __init__(
        self,
        policy: Policy,
        *,
        deadline: float,
        retries: int,
        connect_timeout: float,
        read_timeout: float,
        retry_statuses: tuple[int, ...] = (500, 502, 503, 504),
        user_agent: str = "weathergif/1.0",
        label: str = "a fetch",
    ):
        self.guard = Guard(policy, deadline, label)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        retry = _Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            redirect=0,
            backoff_factor=0.3,
            backoff_max=5,
            status_forcelist=retry_statuses,
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=False,  # a Retry-After past the deadline is no use; the platform retries later
        )
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy, .netrc or CA bundle from the environment
        adapter = _Adapter(max_retries=retry, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": user_agent, "Accept-Encoding": "identity"})

    @property
    def expired(self) -> bool:
        return self.guard.expired

    def check(self) -> None:
        self.guard.check()

    def prepare(self, url: str) -> tuple[requests.PreparedRequest, Origin]:
        """The request for `url` as it will be sent, and where it goes; Refused if not allowed."""
        try:
            prepared = self.session.prepare_request(requests.Request("GET", url))
        except (requests.exceptions.RequestException, ValueError):
            raise Refused("the URL cannot be read") from None
        where = origin(prepared.url or "")
        if not self.guard.policy.allows(*where):
            raise Refused(f"{where} is not on the fetch allow-list")
        return prepared, where

    def send(self, prepared: requests.PreparedRequest) -> requests.Response:
        """Send a prepared GET (no redirects followed); the body is streamed."""
        self.guard.check()
        self.guard.targets.add(prepared.path_url)  # before it is sent: urllib3 logs it as it sends it
        remaining = max(self.guard.remaining(), 0.01)  # the watchdog ends it if the deadline passes
        return self.session.send(
            prepared,
            timeout=(min(self.connect_timeout, remaining), min(self.read_timeout, remaining)),
            stream=True,
            allow_redirects=False,
        )

    def __enter__(self) -> Client:
        self.guard.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.session.close()
        finally:
            self.guard.__exit__(*exc)
