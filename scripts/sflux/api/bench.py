"""A bounded load test of the API: N concurrent keep-alive clients against a
running server for a fixed time, reporting latency percentiles and errors.

The client is a minimal HTTP/1.1 client on asyncio (uvloop when present),
because the load generator shares the machine's two cores with the server:
a heavier client would measure itself.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    path: str
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    def line(self) -> str:
        return (
            f"{self.path:40} clients={self.clients:<3} requests={self.requests:<6} "
            f"rps={self.requests / self.seconds:7.1f} p50={self.percentile(50):6.2f} ms "
            f"p95={self.percentile(95):6.2f} ms p99={self.percentile(99):6.2f} ms "
            f"max={max(self.latencies_ms, default=math.nan):6.1f} ms errors={self.errors}"
        )


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return status


async def _client(host: str, port: int, request: bytes, deadline: float, result: Result) -> None:
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            elapsed = (time.perf_counter() - started) * 1000
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == 200:
                result.latencies_ms.append(elapsed)
            else:
                result.errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            result.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _run(host: str, port: int, path: str, token: str, clients: int, seconds: float) -> Result:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode("latin-1")
    result = Result(path, clients, seconds)
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(_client(host, port, request, deadline, result) for _ in range(clients)))
    return result


def run(host: str, port: int, path: str, token: str, clients: int, seconds: float) -> Result:
    """Runs `clients` connections for `seconds`, each sending the next
    request as soon as the previous answer arrived (a closed loop)."""
    try:
        import uvloop

        return uvloop.run(_run(host, port, path, token, clients, seconds))
    except ImportError:
        return asyncio.run(_run(host, port, path, token, clients, seconds))
