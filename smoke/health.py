"""One health request, as the seal's health check and the ship's health gate both make it:
redirects followed by hand, only to production's host or an allowed one, and at most
:data:`MAX_BODY` of a 200's body read (a body that never ends cannot fill the memory).
How long it may take is the caller's: it has no deadline of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

if TYPE_CHECKING:
    import httpx

#: the answer a healthy production gives
HEALTH_STATUS = 200
#: the most of a healthy answer's body that is read: a health page is small, and one past this
#: is not healthy (an answer that never ends is one)
MAX_BODY = 64 * 1024
#: redirects followed in one request before it gives up
MAX_REDIRECTS = 5

#: the host a URL points at when it is neither production's nor an allowed one, else None
#: (:meth:`smoke.config.AppConfig.offsite`)
Offsite = Callable[[str], str | None]


def offsite_reason(host: str) -> str:
    """Why a redirect (of a page or of the health URL) was not followed, naming its host."""
    return f"redirected to another host: {host} (not production, not in allowed_hosts)"


@dataclass(frozen=True, slots=True)
class HealthAnswer:
    """What one health request found: the last status seen, and why that is not healthy."""

    status: int
    #: None when healthy: a 200 whose whole body came within :data:`MAX_BODY`
    reason: str | None
    #: the host an off-host redirect pointed to (not followed: no point asking again)
    offsite: str | None = None

    @property
    def healthy(self) -> bool:
        return self.reason is None


def status_reason(status: int, expected: int = HEALTH_STATUS) -> str:
    """Why a status is wrong: ``status 500`` when 200 was expected (nearly always), else
    ``status 200, expected 404``."""
    if expected == HEALTH_STATUS:
        return f"status {status}"
    return f"status {status}, expected {expected}"


async def ask_health(client: httpx.AsyncClient, url: str, *, offsite: Offsite) -> HealthAnswer:
    """GET ``url`` with ``client`` (which must not follow redirects itself). A redirect is
    followed when ``offsite`` finds nothing wrong with where it points, at most
    :data:`MAX_REDIRECTS` times; a 200 is read to its end, or to :data:`MAX_BODY` and no
    further; any other answer is closed unread. Raises what httpx raises."""
    for _ in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", url) as response:
            status = response.status_code
            location = response.headers.get("location")
            if not (response.is_redirect and location):
                if status != HEALTH_STATUS:
                    return HealthAnswer(status, status_reason(status))
                read = 0
                # the bytes as they came (a compressed body is never inflated: no bomb)
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_BODY:
                        why = f"status {status}, but its body ran past {MAX_BODY // 1024} KiB"
                        return HealthAnswer(status, why)
                return HealthAnswer(status, None)
        url = urljoin(url, location)
        if (host := offsite(url)) is not None:
            return HealthAnswer(status, offsite_reason(host), offsite=host)
    return HealthAnswer(status, "too many redirects")
