"""An open-loop HTTP/1.1 load generator (asyncio, keep-alive connections) for scripts/soak.py's steady mix, and
the `critic serve` command line bench/api.py starts. One Python process saturates long before the server does
(bench/api.py drives its throughput rows with wrk for that reason); at the soak's few dozen requests a second it
keeps the schedule.

Open loop: request ``i`` of a run at ``rate`` req/s is due at ``start + i / rate`` whether or not earlier ones
have been answered, and its latency counts from that due time, not from when a connection became free. A
server that falls behind therefore shows its queueing in the latencies instead of slowing the client down
(the "coordinated omission" a closed-loop generator such as plain wrk suffers; wrk2 measures the same way).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, method: str, path: str, data: object, headers: tuple[tuple[str, str], ...] = ()) -> Request:
        return cls(method, path, json.dumps(data).encode(), (("Content-Type", "application/json"), *headers))

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in ("POST", "PATCH", "PUT"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class Outcome:
    """One request: ``latency`` from its due time (s), ``service`` from when it was sent (s), HTTP status
    (0 for a connection error, -1 for a timeout), when it finished (monotonic s)."""

    due: float
    latency: float
    service: float
    status: int
    finished: float
    body: bytes = b""


@dataclass
class RunStats:
    offered: float
    duration: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if 200 <= o.status < 400]

    @property
    def errors(self) -> int:
        return len(self.outcomes) - len(self.ok)

    @property
    def server_errors(self) -> int:
        return sum(1 for o in self.outcomes if o.status >= 500 or o.status <= 0)

    @property
    def throughput(self) -> float:
        """Successful responses per second, from the first due time to the last completion."""
        ok = self.ok
        if not ok:
            return 0.0
        span = max(o.finished for o in ok) - min(o.due for o in self.outcomes)
        return len(ok) / max(span, 1e-9)

    def percentile_ms(self, q: float) -> float:
        """Latency percentile over every request; failed ones count as infinitely slow."""
        if not self.outcomes:
            return float("nan")
        values = np.array([o.latency if 200 <= o.status < 400 else np.inf for o in self.outcomes])
        return float(np.percentile(values, q, method="higher")) * 1000


#: A kept-alive connection idle longer than this is closed rather than reused: servers close idle ones
#: themselves (gunicorn after its keepalive, 5 s for `critic serve`), and a request sent on a connection the
#: server is closing fails without having been read.
MAX_IDLE_S = 2.0


class _Pool:
    """Idle keep-alive connections to one server, opened on demand up to ``limit``."""

    def __init__(self, host: str, port: int, limit: int):
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        async with self.freed:
            while True:
                while not self.idle and self.opened >= self.limit:
                    await self.freed.wait()
                if not self.idle:
                    break
                reader, writer, released = self.idle.pop()
                if loop.time() - released <= MAX_IDLE_S and not reader.at_eof():
                    return reader, writer
                writer.close()
                self.opened -= 1
            self.opened += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            await self.discard(None)
            raise
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        async with self.freed:
            self.idle.append((*conn, asyncio.get_running_loop().time()))
            self.freed.notify()

    async def discard(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        if conn is not None:
            conn[1].close()
        async with self.freed:
            self.opened -= 1
            self.freed.notify()

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[int, bytes, bool]:
    """Send one request, read one response; returns (status, body, keep the connection)."""
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += chunk[:-2]
            if size == 0:
                break
    elif int(status) in (204, 304) or int(status) < 200:
        body = b""
    else:
        body, keep = await reader.read(), False
    return int(status), body, keep


async def _one(pool: _Pool, raw: bytes, due: float, timeout: float, keep_body: bool) -> Outcome:
    loop = asyncio.get_running_loop()
    sent = due
    conn = None
    try:
        async with asyncio.timeout(timeout):
            conn = await pool.acquire()
            sent = loop.time()
            status, body, keep = await _exchange(*conn, raw)
        if keep:
            await pool.release(conn)
        else:
            await pool.discard(conn)
    except TimeoutError:
        status, body = -1, b""
        if conn is not None:
            await pool.discard(conn)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        status, body = 0, b""
        if conn is not None:
            await pool.discard(conn)
    now = loop.time()
    return Outcome(due, now - due, now - sent, status, now, body if keep_body else b"")


async def _run(
    host: str,
    port: int,
    make: Callable[[int], Request],
    rate: float,
    duration: float,
    connections: int,
    timeout: float,
    keep_body: bool,
    observe: Callable[[int, Outcome], None] | None = None,
) -> RunStats:
    loop = asyncio.get_running_loop()
    pool = _Pool(host, port, connections)
    hostname = f"{host}:{port}"
    count = max(1, round(rate * duration))
    start = loop.time() + 0.01
    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(pool, make(i).encode(hostname), due, timeout, keep_body or bool(observe)))
        if observe is not None:
            task.add_done_callback(lambda done, n=i: observe(n, done.result()))
        tasks.append(task)
    outcomes = await asyncio.gather(*tasks)
    pool.close()
    stats = RunStats(rate, duration, list(outcomes))
    # Express due times and completions relative to the run's start, in monotonic seconds.
    offset = time.monotonic() - loop.time()
    for outcome in stats.outcomes:
        outcome.due += offset
        outcome.finished += offset
    return stats


def run_at_rate(
    host: str,
    port: int,
    make: Callable[[int], Request],
    rate: float,
    duration: float,
    connections: int = 64,
    timeout: float = 10.0,
    keep_body: bool = False,
    observe: Callable[[int, Outcome], None] | None = None,
) -> RunStats:
    """Fire ``make(i)`` at ``rate`` req/s for ``duration`` s (open loop); every request's outcome.

    At most ``connections`` requests are in flight; a request due while all are busy waits for one, and that
    wait counts in its latency. A request not answered within ``timeout`` s counts as failed (status -1).
    ``observe(i, outcome)`` is called as each request completes (in the generator's thread).
    """
    return asyncio.run(_run(host, port, make, rate, duration, connections, timeout, keep_body, observe))


# ------------------------------------------------------------------ the server under test


def critic_command() -> list[str]:
    """How to run the project's `critic` command with this interpreter's environment."""
    script = Path(sys.executable).with_name("critic")
    return [str(script)] if script.exists() else [sys.executable, "-m", "critic.cli"]


def critic_serve(home: str | Path, port: int, workers: int = 2, threads: int = 4) -> list[str]:
    """``critic serve`` (gunicorn) for ``home`` on a loopback port."""
    return critic_command() + [
        "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--threads", str(threads),
    ]  # fmt: skip
