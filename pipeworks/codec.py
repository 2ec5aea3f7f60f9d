"""Payload encryption: an AES-GCM PayloadCodec with a keyring of named keys.

Temporal stores workflow inputs, results, heartbeat details, activity summaries and
(with the failure converter below) failure messages as payloads in its database. With
this codec they leave the process encrypted, so the Temporal server and anyone reading
its database or history see only ciphertext; workers, the CLI and the codec server
(for the Web UI), which hold the keys, see the values.

A keyring is an ordered list of `id:base64key` entries. The last key (the newest)
encrypts; every key decrypts. Rotating is adding a key at the end: payloads written
with the old one stay readable as long as it stays in the list.

The key id travels in the payload's metadata; it is bound to the ciphertext as AES-GCM
associated data, so relabelling a payload with another key id fails authentication.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the size GCM is specified for
# Key ids are echoed in errors and stored in every payload, so they are restricted to
# characters that cannot carry (or be mistaken for) key material: no '+', '/', '='.
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class KeyringError(ValueError):
    """The keyring text is malformed. Messages never contain key material."""


class DecryptionError(ValueError):
    """A payload cannot be decrypted with the configured keys."""


class Keyring:
    """Named 256-bit keys in the order given; the last one is used to encrypt."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyringError("no keys given")
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if key_id in self._ciphers:
                raise KeyringError(f"key id {key_id!r} appears twice")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id!r} has {len(key) * 8} bits; expected 256")
            self._ciphers[key_id] = AESGCM(key)
        self.current_id = keys[-1][0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def cipher(self, key_id: str) -> AESGCM | None:
        return self._ciphers.get(key_id)

    def __repr__(self) -> str:  # ids only: a keyring must never print its keys
        return f"Keyring(key_ids={self.key_ids!r}, current={self.current_id!r})"


def parse_keyring(text: str) -> Keyring:
    """`id1:base64key,id2:base64key` (whitespace around entries ignored)."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise KeyringError("expected id:base64key[,id:base64key...], got nothing")
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not encoded.strip():
            raise KeyringError(f"entry {number}: expected id:base64key")
        if not _KEY_ID.fullmatch(key_id):
            # Not echoed: with id and key swapped, the "id" would be the key.
            raise KeyringError(f"entry {number}: a key id is 1-64 letters, digits, '.', "
                               "'_' or '-'")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"key {key_id!r} is not valid base64") from None
        keys.append((key_id, key))
    return Keyring(keys)


def generate_key() -> str:
    """A new random 256-bit key, base64 encoded as the keyring expects it."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the current key; decrypts with the key it names.

    Payloads that are not encrypted pass through `decode` unchanged, so runs started
    before encryption was turned on keep working afterwards. The work is synchronous
    (AES-GCM on small payloads takes microseconds); `encrypt`/`decrypt` are public so
    the codec server can use them from its request threads.
    """

    def __init__(self, keyring: Keyring) -> None:
        super().__init__()
        self.keyring = keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encrypt(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decrypt(payloads)

    def encrypt(self, payloads: Iterable[Payload]) -> list[Payload]:
        key_id = self.keyring.current_id
        cipher = self.keyring.cipher(key_id)
        assert cipher is not None
        encrypted = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)  # never reused: random per payload
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            encrypted.append(Payload(
                metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
                data=nonce + sealed))
        return encrypted

    def decrypt(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self._decrypt_one(p) if is_encrypted(p) else p for p in payloads]

    def _decrypt_one(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self.keyring.cipher(key_id)
        if cipher is None:
            raise DecryptionError(
                f"payload encrypted with key id {key_id!r}, which is not in "
                f"PIPEWORKS_ENCRYPTION_KEYS (configured: {', '.join(self.keyring.key_ids)})")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise DecryptionError(
                f"payload encrypted with key id {key_id!r} failed authentication: that id "
                "holds a different key here, or the payload was altered") from None
        return Payload.FromString(plain)


def encrypting_data_converter(keyring: Keyring) -> DataConverter:
    """The default JSON converter, with payloads encrypted and failure messages and
    stack traces moved into an (encrypted) payload: they often quote the data."""
    return DataConverter(payload_codec=EncryptionCodec(keyring),
                         failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
