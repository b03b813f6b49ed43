"""Signed tree heads and inclusion proofs as JSON: sign, check, verify offline. No database.

A head commits to the first `tree_size` leaves of the log-wide audit tree (store/merkle.py).
The signature is Ed25519 over a fixed binary encoding, so nothing about JSON formatting
matters:

    b"vjm-tree-head-v1\\x00" || uint64be(tree_size) || uint64be(timestamp_ms) || root_hash

`key_id` is the hex SHA-256 of the raw 32-byte public key, which travels with the head; an
auditor pins the key (`--public-key`) rather than trusting the one in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import merkle

DOMAIN = b"vjm-tree-head-v1\x00"
KEY_ENV = "VJM_AUDIT_KEY_FILE"


class HeadError(ValueError):
    """A head, key or proof file that cannot be used (malformed, or a bad signature)."""


@dataclass(frozen=True, slots=True)
class TreeHead:
    """{tree_size, root_hash, timestamp, key_id} with the public key and the signature."""

    tree_size: int
    root_hash: bytes
    timestamp: int  # milliseconds since the epoch
    public_key: bytes
    signature: bytes

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "algorithm": "Ed25519", "tree_size": self.tree_size,
                "root_hash": self.root_hash.hex(), "timestamp": self.timestamp,
                "signed_at": datetime.fromtimestamp(self.timestamp / 1000, UTC).isoformat(timespec="milliseconds"),
                "key_id": self.key_id, "public_key": self.public_key.hex(), "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TreeHead:
        try:
            if doc.get("version") != 1 or doc.get("algorithm") != "Ed25519":
                raise HeadError("not a version 1 Ed25519 tree head")
            head = cls(tree_size=_int(doc["tree_size"]), root_hash=_hex(doc["root_hash"], 32),
                       timestamp=_int(doc["timestamp"]), public_key=_hex(doc["public_key"], 32),
                       signature=_hex(doc["signature"], 64))
        except (KeyError, TypeError, ValueError) as exc:
            raise HeadError(f"malformed tree head: {exc}") from None
        if doc.get("key_id") != head.key_id:
            raise HeadError("the head's key_id is not the hash of its public key")
        return head


def key_id_of(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def signed_bytes(tree_size: int, timestamp: int, root_hash: bytes) -> bytes:
    return DOMAIN + struct.pack(">QQ", tree_size, timestamp) + root_hash


def sign_head(key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, timestamp: int | None = None) -> TreeHead:
    """Sign {tree_size, root_hash, now} with `key`."""
    if timestamp is None:
        timestamp = int(datetime.now(UTC).timestamp() * 1000)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return TreeHead(tree_size, root_hash, timestamp, public, key.sign(signed_bytes(tree_size, timestamp, root_hash)))


def signature_ok(head: TreeHead, pinned: bytes | None = None) -> bool:
    """The signature is valid for the head's key (and that key is the pinned one, if given)."""
    if pinned is not None and pinned != head.public_key:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(head.public_key).verify(
            head.signature, signed_bytes(head.tree_size, head.timestamp, head.root_hash))
    except InvalidSignature:
        return False
    return True


# --- keys ---

def generate_key(out: Path) -> tuple[Path, bytes]:
    """Write a new private key (PKCS#8 PEM, mode 0600) and its public key (`<out>.pub`)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key()
    pub_path = out.with_name(out.name + ".pub")
    pub_path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pub_path, public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_private_key(path: Path | str | None) -> Ed25519PrivateKey:
    """The signing key from `path`, else from the file named by VJM_AUDIT_KEY_FILE."""
    path = path or os.environ.get(KEY_ENV)
    if not path:
        raise HeadError(f"no signing key: give --key or set {KEY_ENV}")
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise HeadError(f"cannot read the signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise HeadError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path | str) -> bytes:
    """A raw 32-byte Ed25519 public key from a PEM file (or from a private key file)."""
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise HeadError(f"{path} holds no Ed25519 key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise HeadError(f"{path} is not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def read_head(path: Path | str) -> TreeHead:
    try:
        return TreeHead.from_json(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise HeadError(f"cannot read the tree head {path}: {exc}") from None


# --- inclusion proofs, checked offline ---

@dataclass(frozen=True, slots=True)
class ProofCheck:
    ok: bool
    checked: int
    problems: list[str]


def check_proof(proof: dict[str, Any], head: TreeHead, pinned: bytes | None = None) -> ProofCheck:
    """Verify a `vjm audit prove` document against a head, with nothing but the two.

    The head's signature (and pinned key), then for every event: its leaf is
    SHA-256(0x00 || event hash), and its audit path leads from that leaf at its index to the
    head's root in a tree of the head's size; the job's events link (prev_hash = the previous
    event's hash) and their versions run 1, 2, 3, ...
    """
    problems: list[str] = []
    if not signature_ok(head, pinned):
        problems.append("the head's signature does not verify" + (" with the pinned key" if pinned else ""))
    if proof.get("tree_size") != head.tree_size or proof.get("root_hash") != head.root_hash.hex():
        problems.append(f"the proof is for tree size {proof.get('tree_size')}, not this head's {head.tree_size}")
    events = proof.get("events") or []
    problems += _event_problems(events, head)
    if not events:
        problems.append("the proof holds no events")
    return ProofCheck(ok=not problems, checked=len(events), problems=problems)


def _event_problems(events: list[Any], head: TreeHead) -> list[str]:
    """Each proved event: well formed, its audit path leads to the head's root, it follows the previous one."""
    problems: list[str] = []
    previous: bytes | None = None
    for k, item in enumerate(events):
        try:
            event_hash = _hex(item["hash"], 32)
            index = _int(item["leaf_index"])
            path = [_hex(p, 32) for p in item["audit_path"]]
            prev = _hex(item["prev_hash"], 32) if item.get("prev_hash") else None
            version = _int(item["version"])
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"event {k}: malformed: {exc}")
            continue
        if not merkle.verify_inclusion(merkle.leaf_hash(event_hash), index, head.tree_size, path, head.root_hash):
            problems.append(f"version {version} (leaf {index}): the audit path does not lead to the head's root")
        if version != k + 1 or prev != previous:
            problems.append(f"version {version} (leaf {index}): does not follow the previous event in the chain")
        previous = event_hash
    return problems


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


def _hex(value: Any, size: int) -> bytes:
    data = bytes.fromhex(value)
    if len(data) != size:
        raise ValueError(f"expected {size} bytes, got {len(data)}")
    return data
