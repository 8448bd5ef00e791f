"""A 1 GiB upload to a real ``lorag serve`` on loopback, with the default 50 MB upload limit:
declared, it is refused before a byte of it is read; sent chunked without a length, it is
refused once the limit is passed, so the server reads about 50 MB of it, stores nothing, starts
no job, and answers normally afterwards."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.test_soak import harness

KEY = "huge-upload-test-key-0123456789"
GIB = 1024**3
LIMIT = 50 * 1024 * 1024
BLOCK = 1024 * 1024
BOUNDARY = "lorag-huge-upload"


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def get(self, path: str) -> object:
        headers = {"Authorization": f"Bearer {KEY}"}
        response = httpx.get(f"{self.url}{path}", headers=headers, timeout=60)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_generator_dir: Path, tiny_embedder_dir: Path
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("huge")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    env["LORAG_GENERATOR__MODEL"] = str(tiny_generator_dir)
    env["LORAG_EMBEDDER__MODEL"] = str(tiny_embedder_dir)
    process, url = harness.start_server(root / "data", root / "server.log", KEY, env)
    try:
        headers = {"Authorization": f"Bearer {KEY}"}
        httpx.post(f"{url}/v1/collections", json={"name": "kb"}, headers=headers).raise_for_status()
        yield Server(url, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert not list((root / "data" / "api" / "work").iterdir())  # no staged upload left


def head(url: str, length: int | None) -> bytes:
    """The request line and headers of a multipart upload of one file to collection kb."""
    host = urlsplit(url).netloc
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST /v1/collections/kb/documents HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{size}\r\n\r\n"
    ).encode()


def part_head() -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="huge.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()


def send_until_answered(url: str, length: int | None) -> tuple[int, dict[str, object], int]:
    """Send up to 1 GiB of upload, stopping as soon as the server answers (or closes); its
    status, its JSON body and the bytes of the body sent."""
    parts = urlsplit(url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=120) as conn:
        conn.sendall(head(url, length))
        block = b"lorag " * (BLOCK // 6)
        opening = part_head()
        try:
            while sent < GIB:
                readable, _, _ = select.select([conn], [], [], 0)
                if readable:
                    break
                payload = opening + block if sent == 0 else block
                framed = f"{len(payload):x}\r\n".encode() + payload + b"\r\n"
                conn.sendall(framed if length is None else payload)
                sent += len(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while the body was still coming
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply) < reply.index(b"\r\n\r\n") + 4 + _length(
            reply
        ):
            data = conn.recv(65536)
            if not data:
                break
            reply += data
    status = int(reply.split(b" ", 2)[1])
    body = json.loads(reply[reply.index(b"\r\n\r\n") + 4 :])
    return status, body, sent


def _length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_declared_gigabyte_is_refused_before_it_is_read(server: Server) -> None:
    before = server.get("/v1/jobs")
    status, body, sent = send_until_answered(server.url, length=GIB)
    assert status == 413
    assert "is larger than the limit of" in str(body["detail"])
    assert "(setting api.max_upload_mb)" in str(body["detail"])
    assert sent < LIMIT  # answered while the body had barely started
    assert server.get("/v1/jobs") == before


def test_a_chunked_gigabyte_is_refused_once_past_the_limit_and_leaves_nothing(
    server: Server,
) -> None:
    before = server.get("/v1/jobs")
    rss_before = server.rss_mib()
    status, body, sent = send_until_answered(server.url, length=None)
    assert status == 413
    assert "(setting api.max_upload_mb)" in str(body["detail"])
    grown = server.rss_mib() - rss_before
    print(f"chunked 1 GiB: 413 after {sent / 2**20:.0f} MiB sent, server RSS {grown:+.1f} MiB")
    assert LIMIT <= sent < 2 * LIMIT  # the server stopped reading soon after the limit
    assert grown < 64  # spooled to disk, not held in memory
    assert server.get("/v1/jobs") == before
    assert server.get("/v1/collections/kb/documents") == []
