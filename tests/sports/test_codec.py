"""Payload encryption, the codec server and secure-connection settings.

The run tests use the production wiring (`connect_temporal` with encryption keys, the
worker from `running_worker`) against the real dev server, then read the history with
a client that has no codec: what Temporal stores must be ciphertext.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import signal
import socket
import ssl
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowFailureError
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from devstack.processes import free_port
from devstack.sports.server import UpstreamServer
from devstack.temporal import TemporalDevServer, temporal_cli_path
from pipeworks.codec import (
    ENCODING,
    KEY_ID_METADATA,
    DecryptionError,
    EncryptionCodec,
    Keyring,
    generate_key,
    parse_keyring,
)
from pipeworks.db import Connection
from pipeworks.settings import ConfigError, Settings, load_settings
from pipeworks.temporal_client import connect_options, connect_temporal
from starters.cli import run_command
from starters.codec_server import CodecServer, codec_server_from
from tests.sports.helpers import run_options
from tests.worker import running_worker

OLD_KEY, NEW_KEY = generate_key(), generate_key()
UI_ORIGIN = "http://localhost:8233"


def keyring(*ids: str) -> Keyring:
    keys = {"old": OLD_KEY, "new": NEW_KEY}
    return parse_keyring(",".join(f"{i}:{keys[i]}" for i in ids))


def plain(value: Any) -> Payload:
    return DataConverter.default.payload_converter.to_payloads([value])[0]


# -- the codec itself ------------------------------------------------------------------

async def test_round_trip_with_a_fresh_nonce_per_payload() -> None:
    codec = EncryptionCodec(keyring("old"))
    original = [plain({"org_id": "A1", "token": "s3cret-token"}), plain("second")]
    encrypted = await codec.encode(original)
    assert all(p.metadata["encoding"] == ENCODING for p in encrypted)
    assert all(p.metadata[KEY_ID_METADATA] == b"old" for p in encrypted)
    assert all(b"s3cret-token" not in p.SerializeToString() for p in encrypted)
    assert await codec.decode(encrypted) == original
    again = await codec.encode(original[:1])
    assert again[0].data[:12] != encrypted[0].data[:12]  # a new nonce every time
    assert again[0].data != encrypted[0].data


async def test_unencrypted_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(keyring("old"))
    mixed = [plain("from before encryption"), *(await codec.encode([plain("after")]))]
    assert await codec.decode(mixed) == [plain("from before encryption"), plain("after")]


async def test_rotation_adds_a_key_old_data_stays_readable() -> None:
    before, after = EncryptionCodec(keyring("old")), EncryptionCodec(keyring("old", "new"))
    written_before = await before.encode([plain("written with the old key")])
    assert await after.decode(written_before) == [plain("written with the old key")]
    written_after = await after.encode([plain("new data")])
    assert written_after[0].metadata[KEY_ID_METADATA] == b"new"
    with pytest.raises(DecryptionError, match="key id 'new', which is not in "
                                               "PIPEWORKS_ENCRYPTION_KEYS"):
        await before.decode(written_after)


async def test_tampering_fails_authentication() -> None:
    codec = EncryptionCodec(keyring("old", "new"))
    [payload] = await codec.encode([plain("x")])
    relabelled = Payload(metadata={**payload.metadata, KEY_ID_METADATA: b"old"},
                         data=payload.data)
    flipped = Payload(metadata=payload.metadata, data=payload.data[:-1] + b"\x00")
    for bad in (relabelled, flipped):
        with pytest.raises(DecryptionError, match="failed authentication"):
            await codec.decode([bad])


# -- settings --------------------------------------------------------------------------

def settings_from(**values: Any) -> Settings:
    """Settings from `values` only (environment aside), as the user's strings."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


SHORT_KEY = base64.b64encode(b"k" * 16).decode()


@pytest.mark.parametrize(("value", "message"), [
    (f"k1:{SHORT_KEY}", "key 'k1' has 128 bits; expected 256"),
    (f"k1:{OLD_KEY[:-4]}!!!!", "key 'k1' is not valid base64"),
    (OLD_KEY, "entry 1: expected id:base64key"),
    (f"{OLD_KEY}:k1", "entry 1: a key id is 1-64 letters"),
    (f"k1:{OLD_KEY},k1:{NEW_KEY}", "key id 'k1' appears twice"),
    (f"k1:{OLD_KEY},k2", "entry 2: expected id:base64key"),
])
def test_bad_keys_name_the_variable_and_never_echo_the_key(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("PIPEWORKS_ENCRYPTION_KEYS", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"PIPEWORKS_ENCRYPTION_KEYS: {message}")
    # The CLI's convention: exit 2, one line, no key material.
    assert run_command(["codec-server"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PIPEWORKS_ENCRYPTION_KEYS" in err
    for secret in (OLD_KEY, NEW_KEY, SHORT_KEY, OLD_KEY[:-4]):
        assert secret not in err and secret not in str(raised.value)


def test_secrets_stay_out_of_repr() -> None:
    loaded = settings_from(encryption_keys=f"k1:{OLD_KEY}", temporal_api_key="cloud-api-key-xyz")
    for text in (repr(loaded), str(loaded), repr(parse_keyring(f"k1:{OLD_KEY}"))):
        assert OLD_KEY not in text and "cloud-api-key-xyz" not in text


def test_codec_server_needs_keys() -> None:
    # Not through run_command: a command that gets past settings configures logging
    # for the whole test session.
    with pytest.raises(ConfigError, match=r"^PIPEWORKS_ENCRYPTION_KEYS is not set: the codec "
                                          r"server has no key to decode with$"):
        codec_server_from(settings_from())


# -- TLS and API keys ------------------------------------------------------------------

def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
           issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(_name(issuer)).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None,
           key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed CA and, signed by it, a server and a client certificate."""
    where = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1())
                                      for _ in range(3))
    ca = _issue("pipeworks test CA", ca_key, "pipeworks test CA", ca_key, ca=True)
    return {
        "ca": _write(where / "ca.pem", cert=ca),
        "server_cert": _write(where / "server.pem",
                              cert=_issue("localhost", server_key, "pipeworks test CA",
                                          ca_key, ca=False)),
        "server_key": _write(where / "server.key", key=server_key),
        "client_cert": _write(where / "client.pem",
                              cert=_issue("pipeworks-worker", client_key, "pipeworks test CA",
                                          ca_key, ca=False)),
        "client_key": _write(where / "client.key", key=client_key),
    }


def test_no_tls_settings_keep_the_sdk_defaults() -> None:
    assert connect_options(settings_from()) == {"namespace": "default"}


def test_mtls_settings_make_the_tls_config(pki: dict[str, Path]) -> None:
    options = connect_options(settings_from(
        temporal_tls_ca=pki["ca"], temporal_tls_cert=pki["client_cert"],
        temporal_tls_key=pki["client_key"], temporal_tls_server_name="temporal.internal"))
    assert options["tls"] == TLSConfig(
        server_root_ca_cert=pki["ca"].read_bytes(), client_cert=pki["client_cert"].read_bytes(),
        client_private_key=pki["client_key"].read_bytes(), domain="temporal.internal")
    assert "api_key" not in options and "data_converter" not in options


def test_an_api_key_implies_tls_with_the_system_roots() -> None:
    options = connect_options(settings_from(temporal_api_key="cloud-key",
                                           temporal_namespace="acme.a1b2c"))
    assert options == {"namespace": "acme.a1b2c", "tls": TLSConfig(), "api_key": "cloud-key"}
    assert connect_options(settings_from(temporal_tls=True))["tls"] == TLSConfig()


def test_tls_setting_errors_name_the_variable(pki: dict[str, Path], tmp_path: Path) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    cases = [
        ({"temporal_tls_cert": pki["client_cert"]},
         "PIPEWORKS_TEMPORAL_TLS_KEY: PIPEWORKS_TEMPORAL_TLS_CERT and "
         "PIPEWORKS_TEMPORAL_TLS_KEY go together"),
        ({"temporal_tls_key": pki["client_key"]}, "PIPEWORKS_TEMPORAL_TLS_KEY: "),
        ({"temporal_tls_ca": tmp_path / "missing.pem"},
         f"PIPEWORKS_TEMPORAL_TLS_CA: cannot read {tmp_path / 'missing.pem'}: No such file"),
        ({"temporal_tls_ca": tmp_path}, "PIPEWORKS_TEMPORAL_TLS_CA: cannot read"),
        ({"temporal_tls_ca": not_pem}, f"PIPEWORKS_TEMPORAL_TLS_CA: {not_pem} is not a PEM"),
    ]
    for values, message in cases:
        with pytest.raises(ConfigError) as raised:
            load_settings(_env_file=None, **values)
        assert str(raised.value).startswith(message), (values, str(raised.value))


def test_a_file_gone_after_start_is_a_config_error(pki: dict[str, Path],
                                                   tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki["ca"].read_bytes())
    loaded = settings_from(temporal_tls_ca=ca)
    ca.unlink()
    with pytest.raises(ConfigError, match=r"^PIPEWORKS_TEMPORAL_TLS_CA: cannot read"):
        connect_options(loaded)


class TlsProbe:
    """A TLS server that requires a client certificate from the test CA and records
    whom it saw; it speaks no gRPC, so the connect fails after the handshake."""

    def __init__(self, pki: dict[str, Path]) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"])
        self.context.load_cert_chain(pki["server_cert"], pki["server_key"])
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["h2"])
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.peers: list[str] = []
        self.failures: list[str] = []
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    subject = dict(x[0] for x in tls.getpeercert()["subject"])  # type: ignore[index, misc]
                    self.peers.append(str(subject["commonName"]))
            except (ssl.SSLError, OSError) as err:
                self.failures.append(str(err))

    def __enter__(self) -> TlsProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


async def test_mtls_handshake_presents_the_client_certificate(
        pki: dict[str, Path]) -> None:
    with TlsProbe(pki) as probe:
        configured = settings_from(
            temporal_address=f"localhost:{probe.port}", temporal_tls_ca=pki["ca"],
            temporal_tls_cert=pki["client_cert"], temporal_tls_key=pki["client_key"],
            temporal_api_key="never-shown-api-key")
        with pytest.raises(ConfigError) as raised:
            await asyncio.wait_for(connect_temporal(configured), 30)
    assert "pipeworks-worker" in probe.peers, (probe.peers, probe.failures)
    assert "never-shown-api-key" not in str(raised.value)


# -- runs on the real dev server -------------------------------------------------------

def encrypted_settings(settings: Settings, *key_ids: str) -> Settings:
    keys = {"old": OLD_KEY, "new": NEW_KEY}
    return settings.model_copy(update={"encryption_keys": SecretStr(
        ",".join(f"{i}:{keys[i]}" for i in key_ids))})


@pytest_asyncio.fixture(loop_scope="session")
async def encrypting(settings: Settings, temporal_env: WorkflowEnvironment, db: Connection
                     ) -> AsyncIterator[tuple[Settings, Client]]:
    """A worker whose client was connected from settings with keys old and new."""
    configured = encrypted_settings(settings, "old", "new")
    client = await connect_temporal(configured)
    async with running_worker(configured, client):
        yield configured, client


def payloads_in(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every Payload inside a history event, with the field path that holds it."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        where = f"{path}.{field.name}"
        if field.message_type.GetOptions().map_entry:
            values = list(value.values()) if field.message_type.fields_by_name[
                "value"].message_type else []
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            if isinstance(item, Payload):
                yield where, item
            else:
                yield from payloads_in(item, where)


async def raw_history(client: Client, workflow_id: str) -> list[HistoryEvent]:
    return [event async for event in client.get_workflow_handle(workflow_id)
            .fetch_history_events()]


def _clear_search_attributes(message: Message) -> None:
    for field, value in message.ListFields():
        if field.name == "search_attributes":
            message.ClearField(field.name)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in value if field.is_repeated else [value]:
                _clear_search_attributes(item)


def stored_bytes(events: list[HistoryEvent]) -> bytes:
    """The history as Temporal stores it, minus search attributes (which are indexed
    in plain text by design; the workflow chooses what goes there)."""
    raw = b""
    for event in events:
        copy = HistoryEvent()
        copy.CopyFrom(event)
        _clear_search_attributes(copy)
        raw += copy.SerializeToString()
    return raw


def start_payload(settings: Settings, **fields: Any) -> dict[str, Any]:
    return {**run_options(settings), **fields}


def assert_all_encrypted(events: list[HistoryEvent], key_ids: set[bytes]) -> int:
    found = 0
    for event in events:
        if event.marker_recorded_event_attributes.marker_name == "core_patch":
            continue  # `workflow.patched`: the SDK core records the patch id itself
        for where, payload in payloads_in(event):
            if ".search_attributes" in where:
                continue  # indexed for queries by design: never encrypted
            assert payload.metadata.get("encoding") == ENCODING, (event.event_type, where)
            assert payload.metadata[KEY_ID_METADATA] in key_ids, (event.event_type, where)
            found += 1
    return found


async def test_history_holds_only_ciphertext_and_key_holders_read_it(
    encrypting: tuple[Settings, Client], temporal_env: WorkflowEnvironment,
    upstream: UpstreamServer,
) -> None:
    configured, client = encrypting
    workflow_id = f"codec-{uuid.uuid4().hex[:8]}"  # ids are not encrypted: keep it opaque
    org_id = "A1"
    handle = await client.start_workflow(
        "AccountSyncWorkflow", start_payload(configured, org_kind="association", org_id=org_id),
        id=workflow_id, task_queue=configured.task_queue)
    result = await handle.result()
    assert result["status"] == "completed" and result["records"]["staged"] > 0

    events = await raw_history(temporal_env.client, workflow_id)
    raw = stored_bytes(events)
    # Input, result, every activity's arguments and results, and the summaries.
    assert assert_all_encrypted(events, {b"new"}) >= 10
    # What the payloads held; ids and activity type names are plain text by design.
    for plaintext in (b'"org_id"', b"association", b"competition_concurrency",
                      b'"records"', b"lease association", b"completed"):
        assert plaintext not in raw, plaintext

    # Without the keys the result is unreadable; with them it is the progress document.
    with pytest.raises(Exception, match="binary/encrypted"):
        await temporal_env.client.get_workflow_handle(workflow_id).result()
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [decoded_input] = await client.data_converter.decode(started.input.payloads)
    assert decoded_input["org_id"] == org_id
    assert await client.get_workflow_handle(workflow_id).result() == result


async def test_failure_messages_are_encrypted_too(
    encrypting: tuple[Settings, Client], temporal_env: WorkflowEnvironment,
    upstream: UpstreamServer,
) -> None:
    configured, client = encrypting
    missing = "ZZ-no-such-org-4711"
    workflow_id = f"codec-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "AccountSyncWorkflow", start_payload(configured, org_kind="association", org_id=missing),
        id=workflow_id, task_queue=configured.task_queue)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert missing in str(failed.value.cause)  # the key holder reads the message

    events = await raw_history(temporal_env.client, workflow_id)
    assert_all_encrypted(events, {b"new"})
    assert missing.encode() not in stored_bytes(events)


async def test_heartbeat_details_are_encrypted(
    encrypting: tuple[Settings, Client], temporal_env: WorkflowEnvironment,
    upstream: UpstreamServer,
) -> None:
    configured, client = encrypting
    upstream.faults.set(latency_ms=150)  # slow pages: a fetch heartbeats between them
    workflow_id = f"codec-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "AccountSyncWorkflow",
        start_payload(configured, org_kind="association", org_id="A1", page_size=2),
        id=workflow_id, task_queue=configured.task_queue)
    plain_view = temporal_env.client.get_workflow_handle(workflow_id)
    details: list[Payload] = []
    for _ in range(300):
        described = await plain_view.describe()
        pending = described.raw_description.pending_activities
        details = [p for a in pending for p in a.heartbeat_details.payloads]
        if details:
            break
        await asyncio.sleep(0.05)
    assert details, "no heartbeat seen while the run was fetching"
    assert all(p.metadata["encoding"] == ENCODING for p in details)
    assert all(b"next_page_no" not in p.data for p in details)
    decoded = await client.data_converter.decode(details)
    assert any(isinstance(d, dict) and "cursor" in d for d in decoded), decoded
    upstream.faults.set(latency_ms=0)
    assert (await handle.result())["status"] == "completed"


async def test_rotation_and_runs_from_before_encryption(
    encrypting: tuple[Settings, Client], temporal_env: WorkflowEnvironment,
    upstream: UpstreamServer,
) -> None:
    """Workers get the new key first; clients that still have only the old one can
    start runs, and are told clearly which key they lack for the results."""
    configured, _ = encrypting
    old_only = await connect_temporal(encrypted_settings(configured, "old"))
    workflow_id = f"codec-{uuid.uuid4().hex[:8]}"
    handle = await old_only.start_workflow(
        "AccountSyncWorkflow", start_payload(configured, org_kind="association", org_id="A1"),
        id=workflow_id, task_queue=configured.task_queue)
    with pytest.raises(DecryptionError, match="key id 'new', which is not in"):
        await handle.result()
    events = await raw_history(temporal_env.client, workflow_id)
    started = events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata[KEY_ID_METADATA] == b"old"
    assert assert_all_encrypted(events[1:], {b"new"}) > 0  # all the worker wrote
    both = await connect_temporal(encrypted_settings(configured, "old", "new"))
    assert (await both.get_workflow_handle(workflow_id).result())["status"] == "completed"

    # A run started without encryption (before it was turned on) still completes.
    unencrypted = await temporal_env.client.start_workflow(
        "AccountSyncWorkflow", start_payload(configured, org_kind="association", org_id="A1"),
        id=f"codec-{uuid.uuid4().hex[:8]}", task_queue=configured.task_queue)
    assert (await both.get_workflow_handle(unencrypted.id).result())["status"] == "completed"


# -- the codec server ------------------------------------------------------------------

@pytest.fixture
def codec_server() -> Iterator[CodecServer]:
    server = CodecServer(EncryptionCodec(keyring("old", "new")), f"127.0.0.1:{free_port()}",
                         (UI_ORIGIN,), "default").start()
    yield server
    server.stop()


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [{"metadata": {k: base64.b64encode(v).decode()
                                       for k, v in p.metadata.items()},
                          "data": base64.b64encode(p.data).decode()} for p in payloads]}


def from_json(document: dict[str, Any]) -> list[Payload]:
    return [Payload(metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
                    data=base64.b64decode(p.get("data", ""))) for p in document["payloads"]]


async def test_codec_server_encodes_and_decodes_over_http(codec_server: CodecServer) -> None:
    headers = {"Content-Type": "application/json", "X-Namespace": "default",
               "Origin": UI_ORIGIN, "Authorization": "Bearer ui-token"}
    original = [plain({"org_id": "A1"}), plain("two")]
    async with httpx.AsyncClient(base_url=codec_server.url) as http:
        encoded = await http.post("/encode", json=as_json(original), headers=headers)
        assert encoded.status_code == 200, encoded.text
        assert encoded.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
        sealed = from_json(encoded.json())
        assert [p.metadata[KEY_ID_METADATA] for p in sealed] == [b"new", b"new"]
        decoded = await http.post("/decode", json=encoded.json(), headers=headers)
        assert decoded.status_code == 200 and from_json(decoded.json()) == original
        # Unencrypted payloads come back as they are.
        passed = await http.post("/decode", json=as_json(original), headers=headers)
        assert from_json(passed.json()) == original


async def test_codec_server_cors_and_refusals(codec_server: CodecServer) -> None:
    preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    foreign = EncryptionCodec(parse_keyring(f"gone:{generate_key()}"))
    unknown = as_json(await foreign.encode([plain("x")]))
    json_headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=codec_server.url) as http:
        answer = await http.options("/decode", headers=preflight)
        assert answer.status_code == 204
        assert answer.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
        allowed = {h.strip().lower() for h in
                   answer.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "x-namespace"} <= allowed
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]

        evil = await http.options("/decode", headers={**preflight,
                                                      "Origin": "https://evil.example"})
        assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil.headers
        refused = await http.post("/decode", json=unknown, headers={
            **json_headers, "Origin": "https://evil.example"})
        assert refused.status_code == 403

        other = await http.post("/decode", json=unknown, headers={**json_headers,
                                                                  "X-Namespace": "payments"})
        assert other.status_code == 403 and "'payments'" in other.json()["error"]
        missing_key = await http.post("/decode", json=unknown, headers=json_headers)
        assert missing_key.status_code == 400
        assert "key id 'gone'" in missing_key.json()["error"]
        garbage = await http.post("/decode", content=b"{not json", headers=json_headers)
        assert garbage.status_code == 400
        text = await http.post("/decode", content=json.dumps(unknown).encode(),
                               headers={"Content-Type": "text/plain"})
        assert text.status_code == 415
        assert (await http.post("/elsewhere", json={}, headers=json_headers)).status_code == 404


async def test_pipeworks_codec_server_command(tmp_path: Path) -> None:
    """The command as a user runs it: serves until SIGTERM, then exits 0."""
    port = free_port()
    env = {**os.environ, "PIPEWORKS_ENCRYPTION_KEYS": f"old:{OLD_KEY}, new:{NEW_KEY}",
           "PIPEWORKS_CODEC_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starters.cli", "codec-server", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
        assert f"http://127.0.0.1:{port}" in banner and "encrypting with new" in banner
        sealed = await EncryptionCodec(keyring("old")).encode([plain("hello")])
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"http://127.0.0.1:{port}/decode", json=as_json(sealed))
        assert from_json(answer.json()) == [plain("hello")]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        out, err = await process.communicate()
        for text in (banner, out.decode(), err.decode()):
            assert OLD_KEY not in text and NEW_KEY not in text
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_temporal_cli_shows_plaintext_through_the_codec_server(
    encrypting: tuple[Settings, Client], temporal_env: WorkflowEnvironment,
    upstream: UpstreamServer, codec_server: CodecServer,
) -> None:
    configured, client = encrypting
    workflow_id = f"codec-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "AccountSyncWorkflow", start_payload(configured, org_kind="club", org_id="C1-1"),
        id=workflow_id, task_queue=configured.task_queue)
    await handle.result()

    async def show(*extra: str) -> str:
        process = await asyncio.create_subprocess_exec(
            temporal_cli_path(), "workflow", "show", "--workflow-id", workflow_id,
            "--address", configured.temporal_address, "--output", "json",
            "--disable-config-file", "--disable-config-env", *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        return out.decode()

    def encodings(document: Any) -> list[bytes]:
        """Every payload's encoding, as in `assert_all_encrypted`."""
        if isinstance(document, dict):
            if document.get("markerName") == "core_patch":
                return []
            found = [base64.b64decode(document["metadata"]["encoding"])] if isinstance(
                document.get("metadata"), dict) and "encoding" in document["metadata"] else []
            return found + [e for k, v in document.items() if k != "searchAttributes"
                            for e in encodings(v)]
        if isinstance(document, list):
            return [e for v in document for e in encodings(v)]
        return []

    without = json.loads(await show())
    assert set(encodings(without)) == {ENCODING}, set(encodings(without))
    decoded = json.loads(await show("--codec-endpoint", codec_server.url))
    assert ENCODING not in encodings(decoded) and b"json/plain" in encodings(decoded)
    started = decoded["events"][0]["workflowExecutionStartedEventAttributes"]
    [sent] = started["input"]["payloads"]
    assert json.loads(base64.b64decode(sent["data"]))["org_id"] == "C1-1"


async def test_dev_server_web_ui_gets_the_codec_endpoint(tmp_path: Path) -> None:
    assert settings_from().codec_endpoint is None  # encryption off: no codec endpoint
    endpoint = settings_from(encryption_keys=f"k1:{OLD_KEY}",
                             codec_server_address="0.0.0.0:18081").codec_endpoint
    assert endpoint == "http://localhost:18081"  # what a browser on this host calls
    server = TemporalDevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port(),
                               ui_codec_endpoint=endpoint)
    try:
        await asyncio.to_thread(server.start, 60)
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"{server.ui_url}/api/v1/settings")
        assert answer.status_code == 200, answer.text
        assert answer.json()["Codec"]["Endpoint"] == endpoint
    finally:
        await asyncio.to_thread(server.stop)
