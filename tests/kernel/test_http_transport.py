"""The kernel's HTTP client on its real transport (httpx on aiohttp's pool) against real
sockets that misbehave: every failure is a transient error that names what happened,
and a good answer after a bad one still comes through. Over HTTPS the server is
verified against the certificates httpx would trust."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeworks.http import ErrorTally, HttpTransientError, UpstreamClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PAGE = b'{"items": [{"id": "a"}], "next_cursor": null}'


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def answer_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(PAGE)).encode() + b"\r\n\r\n" + PAGE)
    await writer.drain()


async def long_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    link = b"<https://example.test/" + b"x" * 20_000 + b'>; rel="next"'
    writer.write(b"HTTP/1.1 200 OK\r\nLink: " + link + b"\r\nContent-Length: "
                 + str(len(PAGE)).encode() + b"\r\n\r\n" + PAGE)
    await writer.drain()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()  # RST, not FIN


async def close_silently(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()
    writer.close()


async def short_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"items\": [")
    await writer.drain()
    writer.close()


@asynccontextmanager
async def server(*handlers: Handler) -> AsyncIterator[str]:
    """Answers the n-th connection with the n-th handler (the last one from then on)."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        handler = handlers[min(served, len(handlers) - 1)]
        served += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listening.close()
        await listening.wait_closed()


def client_for(url: str, attempts: int = 1) -> UpstreamClient:
    return UpstreamClient(url, max_attempts=attempts, backoff_base_seconds=0.01,
                          backoff_max_seconds=0.01, timeout_seconds=5)


@pytest.mark.parametrize(("handler", "named"), [
    (reset, "ClientOSError"),
    (close_silently, "ServerDisconnectedError"),
    (not_http, "ClientResponseError"),
    (short_body, "ReadError"),
])
async def test_a_broken_answer_is_transient_and_named(handler: Handler, named: str) -> None:
    async with server(handler) as url:
        client = client_for(url)
        try:
            with pytest.raises(HttpTransientError) as raised:
                await client.get_page("/v1/things", {"limit": 1}, ErrorTally())
        finally:
            await client.aclose()
    message = str(raised.value)
    assert message.startswith("GET /v1/things: ") and named in message, message
    assert "timed out" not in message


async def test_a_long_header_line_is_read() -> None:
    async with server(long_header) as url:
        client = client_for(url)
        try:
            page = await client.get_page("/v1/things", {"limit": 1}, ErrorTally())
        finally:
            await client.aclose()
    assert page.items == [{"id": "a"}]


async def test_a_refused_connection_is_transient_and_not_called_a_timeout() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(HttpTransientError) as raised:
            await client.get_page("/v1/things", {"limit": 1}, ErrorTally())
    finally:
        await client.aclose()
    assert "timed out" not in str(raised.value)


async def test_a_good_answer_after_broken_ones_comes_through() -> None:
    async with server(reset, close_silently, answer_page) as url:
        client = client_for(url, attempts=3)
        tally = ErrorTally()
        try:
            page = await client.get_page("/v1/things", {"limit": 1}, tally)
        finally:
            await client.aclose()
    assert page.items == [{"id": "a"}] and page.next_cursor is None
    # Counted as retried (aiohttp itself may retry a GET on a connection that closed).
    assert 1 <= tally.counts["transient"] <= 2


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_https_verifies_the_server_against_the_trusted_certificates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_path, key_path = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    listening = await asyncio.start_server(answer_page, "127.0.0.1", 0, ssl=tls)
    url = f"https://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    try:
        untrusting = client_for(url)  # the default bundle does not know this certificate
        try:
            with pytest.raises(HttpTransientError):
                await untrusting.get_page("/v1/things", {"limit": 1}, ErrorTally())
        finally:
            await untrusting.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))  # as httpx honours it
        trusting = client_for(url)
        try:
            page = await trusting.get_page("/v1/things", {"limit": 1}, ErrorTally())
        finally:
            await trusting.aclose()
        assert page.items == [{"id": "a"}]
    finally:
        listening.close()
        await listening.wait_closed()
