"""`vjm audit`: the per-job hash chain, and the log-wide Merkle tree with signed heads (RFC 9162).

    vjm audit verify                      recompute every job's hash chain
    vjm audit keygen --out key.pem        an Ed25519 key pair (key.pem, key.pem.pub); keep key.pem off the database host
    vjm audit seal                        append the leaves of newly committed events (run it periodically)
    vjm audit sign-head --key key.pem     seal, recompute the tree from the events, print a signed head (JSON)
    vjm audit verify --head HEAD.json [--public-key key.pem.pub]
                                          every event up to the head is present, unchanged and in order
    vjm audit prove JOB_ID [--head HEAD.json]   inclusion proofs of the job's events (JSON)
    vjm audit check-proof PROOF.json --head HEAD.json   verify a proof offline (no database)
    vjm audit consistency OLD.json NEW.json   the new head extends the old one (append-only)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..audit_proofs import (
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
    verify_consistency,
)
from ..errors import ValidationError
from .render import make_console
from .session import add_database_option, add_json_option, open_manager, print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add `audit verify|keygen|seal|sign-head|prove|check-proof|consistency`."""
    parser = sub.add_parser("audit", help="verify the event log: hash chains, signed Merkle tree heads",
                            description="Auditor tools over the append-only event log.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_verify(actions)
    _add_keygen(actions)
    _add_seal(actions)
    _add_sign_head(actions)
    _add_prove(actions)
    _add_check_proof(actions)
    _add_consistency(actions)


def _add_verify(actions: argparse._SubParsersAction) -> None:
    verify = actions.add_parser("verify", help="recompute the hash chain, or check the log against a signed head "
                                               "(exit 1 when something is wrong)",
                                description="Without --head: recompute every event's hash from its content and its "
                                            "predecessor's hash (exit 1 at the first broken link). With --head: "
                                            "recompute the leaves of the first tree_size events in commit order and "
                                            "the Merkle root, compare it with the signed head and check the "
                                            "signature: exit 1 if any event was edited, deleted, reordered or "
                                            "the log truncated.")
    verify.add_argument("--job", metavar="JOB_ID", help="verify one job's chain only")
    verify.add_argument("--head", metavar="HEAD.json", help="a signed tree head (from sign-head)")
    verify.add_argument("--public-key", metavar="PEM", help="the auditor's copy of the signing public key (pins it)")
    add_database_option(verify)
    add_json_option(verify)
    verify.set_defaults(handler=run_verify)


def _add_keygen(actions: argparse._SubParsersAction) -> None:
    keygen = actions.add_parser("keygen", help="write a new Ed25519 signing key (and KEY.pub)",
                                description="Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) to --out and its "
                                            "public key to OUT.pub. Keep the private key where the database cannot "
                                            "read it; publish the public key.")
    keygen.add_argument("--out", metavar="KEY.pem", required=True, help="where to write the private key (must not exist)")
    keygen.set_defaults(handler=run_keygen)


def _add_seal(actions: argparse._SubParsersAction) -> None:
    seal = actions.add_parser("seal", help="append the leaves of newly committed events to the tree",
                              description="Append a leaf for every committed event after the last sealed one, in "
                                          "commit order (below the projection horizon). Off the write path; run "
                                          "it periodically (sign-head also seals first).")
    add_database_option(seal)
    add_json_option(seal)
    seal.set_defaults(handler=run_seal)


def _add_sign_head(actions: argparse._SubParsersAction) -> None:
    sign = actions.add_parser("sign-head", help="seal, then print a signed tree head as JSON",
                              description="Seal, recompute the tree from the events (refusing if the log disagrees "
                                          "with the sealed leaves), sign {tree_size, root_hash, timestamp} with "
                                          f"Ed25519 and print the head as JSON. The key: --key, else ${KEY_ENV}.")
    sign.add_argument("--key", metavar="KEY.pem", help=f"the private key (default: the file named by {KEY_ENV})")
    add_database_option(sign)
    sign.set_defaults(handler=run_sign_head)


def _add_prove(actions: argparse._SubParsersAction) -> None:
    prove = actions.add_parser("prove", help="inclusion proofs of a job's events against a head (JSON)",
                               description="RFC 9162 audit paths of each of the job's events in the tree of the head "
                                           "(default: the newest head kept in the database).")
    prove.add_argument("job_id", metavar="JOB_ID")
    prove.add_argument("--head", metavar="HEAD.json", help="the head to prove against")
    add_database_option(prove)
    prove.set_defaults(handler=run_prove)


def _add_check_proof(actions: argparse._SubParsersAction) -> None:
    check = actions.add_parser("check-proof", help="verify a proof offline against a head (no database)",
                               description="Verify the head's signature and every audit path in the proof, with "
                                           "nothing but the two files. Exit 1 when anything fails.")
    check.add_argument("proof", metavar="PROOF.json")
    check.add_argument("--head", metavar="HEAD.json", required=True)
    check.add_argument("--public-key", metavar="PEM", help="the auditor's copy of the signing public key (pins it)")
    add_json_option(check)
    check.set_defaults(handler=run_check_proof)


def _add_consistency(actions: argparse._SubParsersAction) -> None:
    consistency = actions.add_parser("consistency", help="prove the new head extends the old one (append-only)",
                                     description="Compute the RFC 9162 consistency proof between two heads from the "
                                                 "sealed leaves and verify it: exit 1 if the newer tree does not "
                                                 "contain the older one unchanged.")
    consistency.add_argument("old", metavar="OLD.json")
    consistency.add_argument("new", metavar="NEW.json")
    consistency.add_argument("--public-key", metavar="PEM", help="the signing public key (pins it)")
    add_database_option(consistency)
    add_json_option(consistency)
    consistency.set_defaults(handler=run_consistency)


def _head(path: str) -> TreeHead:
    try:
        return read_head(path)
    except HeadError as exc:
        raise ValidationError(str(exc), field="head") from None


def _public_key(path: str | None) -> bytes | None:
    try:
        return load_public_key(path) if path else None
    except (HeadError, OSError) as exc:
        raise ValidationError(f"cannot read the public key: {exc}", field="public_key") from None


def _read_proof(path: str) -> dict:
    try:
        proof = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(f"cannot read the proof: {exc}", field="proof") from None
    if not isinstance(proof, dict):
        raise ValidationError("the proof is not a JSON object", field="proof")
    return proof


async def run_verify(args: argparse.Namespace) -> int:
    """Verify the chain (or the log against a head); exit 1 when it is broken."""
    if args.head:
        if args.job:
            raise ValidationError("give --job or --head, not both", field="head")
        return await _verify_head(args)
    async with open_manager(args) as manager:
        columns = (SpinnerColumn(), TextColumn("recomputing the hash chain"), TimeElapsedColumn())
        with Progress(*columns, console=make_console(), transient=True, disable=args.json or not make_console().is_terminal) as progress:
            progress.add_task("audit", total=None)
            report = await manager.audit.verify_history(args.job)
    if args.json:
        print_json(report)
    elif report.ok:
        print(f"audit chain verified: ok ({report.checked} events checked, 0 broken links)")
    else:
        print(f"audit chain BROKEN at job {report.first_broken_job_id} version {report.first_broken_version}: "
              f"{report.reason} ({report.checked} events checked)")
    return 0 if report.ok else 1


async def _verify_head(args: argparse.Namespace) -> int:
    head, pinned = _head(args.head), _public_key(args.public_key)
    async with open_manager(args) as manager:
        report = await manager.audit.verify_tree_head(head, pinned)
    if args.json:
        print_json(report)
    elif report.ok:
        print(f"tree head verified: ok ({report.tree_size} events present, unchanged and in commit order; "
              f"root {head.root_hash.hex()[:16]}..., key {report.key_id[:16]}...)")
    else:
        where = f" at leaf {report.leaf_index}" if report.leaf_index is not None else ""
        where += f" (position {report.position}, job {report.job_id})" if report.position is not None else ""
        print(f"tree head FAILED{where}: {report.problem}")
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0 if report.ok else 1


async def run_keygen(args: argparse.Namespace) -> int:
    """Write a key pair; print the key id."""
    out = Path(args.out)
    try:
        pub_path, public = generate_key(out)
    except FileExistsError:
        raise ValidationError(f"{out} exists: choose another --out (a key is never overwritten)", field="out") from None
    print(f"private key: {out} (mode 0600; keep it off the database host)\npublic key: {pub_path}\n"
          f"key id: {key_id_of(public)}")
    return 0


async def run_seal(args: argparse.Namespace) -> int:
    async with open_manager(args) as manager:
        size = await manager.audit.seal()
    print(json.dumps({"tree_size": size}) if args.json else f"sealed: the tree holds {size} events")
    return 0


async def run_sign_head(args: argparse.Namespace) -> int:
    try:
        key = load_private_key(args.key)
    except HeadError as exc:
        raise ValidationError(str(exc), field="key") from None
    async with open_manager(args) as manager:
        head = await manager.audit.sign_tree_head(key)
    print(json.dumps(head.to_json(), indent=2))
    return 0


async def run_prove(args: argparse.Namespace) -> int:
    async with open_manager(args) as manager:
        head = _head(args.head) if args.head else await manager.audit.latest_tree_head()
        if head is None:
            raise ValidationError("no signed head yet: run `vjm audit sign-head` or give --head", field="head")
        proof = await manager.audit.prove_job(args.job_id, head)
    print(json.dumps(proof, indent=2))
    return 0


async def run_check_proof(args: argparse.Namespace) -> int:
    head, pinned = _head(args.head), _public_key(args.public_key)
    proof = _read_proof(args.proof)
    result = check_proof(proof, head, pinned)
    if args.json:
        print_json(result)
    elif result.ok:
        print(f"proof verified: ok ({result.checked} events of job {proof.get('job_id')} are in the tree of "
              f"{head.tree_size} signed by key {head.key_id[:16]}...)")
    else:
        print("proof FAILED: " + "; ".join(result.problems))
    return 0 if result.ok else 1


async def run_consistency(args: argparse.Namespace) -> int:
    old, new, pinned = _head(args.old), _head(args.new), _public_key(args.public_key)
    problems = [f"{name}: the signature does not verify" for name, head in (("old", old), ("new", new))
                if not signature_ok(head, pinned)]
    async with open_manager(args) as manager:
        proof = await manager.audit.consistency_proof(old, new)
    if not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof):
        problems.append(f"the tree of {new.tree_size} does not extend the tree of {old.tree_size}")
    if args.json:
        print_json({"ok": not problems, "old_size": old.tree_size, "new_size": new.tree_size,
                    "proof": [p.hex() for p in proof], "problems": problems})
    elif problems:
        print("consistency FAILED: " + "; ".join(problems))
    else:
        print(f"consistent: the tree of {new.tree_size} extends the tree of {old.tree_size} "
              f"({len(proof)} proof hashes)")
    return 0 if not problems else 1
