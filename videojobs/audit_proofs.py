"""Offline audit proofs, as the application offers them to its adapters and to auditors.

Signed tree heads, inclusion proofs and consistency proofs over the log-wide Merkle tree
(RFC 9162; `store/merkle.py`, `store/tree_heads.py`). Nothing here needs a database: an
auditor checks a proof with the published head and public key alone.
"""

from __future__ import annotations

from store.merkle import verify_consistency
from store.tree_heads import (
    KEY_ENV,
    HeadError,
    TreeHead,
    check_proof,
    generate_key,
    key_id_of,
    load_private_key,
    load_public_key,
    read_head,
    signature_ok,
)

__all__ = ["KEY_ENV", "HeadError", "TreeHead", "check_proof", "generate_key", "key_id_of", "load_private_key",
           "load_public_key", "read_head", "signature_ok", "verify_consistency"]
