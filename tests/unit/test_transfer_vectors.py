"""The test vectors of docs/transfer-protocol.md (version 3), recomputed two ways:
independently here (hmac, hashlib, `cryptography`'s Ed25519), and by the web client's
own web/src/auth.js and web/src/transfer/blocks.js under node, which must agree with
both the document and the rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "transfer-protocol.md"
NODE_SCRIPT = Path(__file__).with_name("auth_vectors.mjs")
BLOCKS_SCRIPT = Path(__file__).with_name("blocks_vectors.mjs")
BLOCK = 1 << 20


def vectors() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- vectors:begin -->")[1].split("<!-- vectors:end -->")[0]
    found = dict(re.findall(r"^(\w+)\s*=\s*(.+?)\s*$", block, flags=re.M))
    assert len(found) >= 25, f"the vectors block in {DOC.name} lost lines: {sorted(found)}"
    return found


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def message(v: dict[str, str], env: dict[str, Any], sender: str, recipient: str) -> bytes:
    fields = [
        "pea-signal-v3",
        v["room"],
        env["kind"],
        sender,
        recipient,
        env["sid"],
        str(env["seq"]),
        env["payload"],
    ]
    return "\n".join(fields).encode()


def test_link_room_and_key() -> None:
    v = vectors()
    s = bytes.fromhex(v["secret_bytes_hex"])
    assert b64url(s) == v["secret"] and len(s) == 16
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["ed25519_seed_hex"]))
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert pk.hex() == v["ed25519_pk_hex"]
    assert b64url(pk) == v["pk"]
    assert b64url(hashlib.sha256(pk).digest()[:16]) == v["commit"]
    assert v["fragment"] == f"3.{v['secret']}.{v['commit']}"
    # Derived from the 16 decoded bytes, not from their base64url text.
    assert b64url(hmac.new(s, b"pea room v3", hashlib.sha256).digest()) == v["room"]
    assert hmac.new(s, b"pea signal key v3", hashlib.sha256).hexdigest() == v["K_hex"]


def test_sharer_envelope_mac_and_signature() -> None:
    v = vectors()
    env = json.loads(v["sharer_envelope"])
    assert set(env) == {"v", "kind", "payload", "sid", "seq", "mac", "pk", "sig"}
    assert env["v"] == 3 and env["pk"] == v["pk"] and len(unb64url(env["sid"])) == 16
    m = message(v, env, v["sharer_peer"], v["receiver_peer"])
    k = bytes.fromhex(v["K_hex"])
    assert hmac.new(k, m, hashlib.sha256).hexdigest() == env["mac"]
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["ed25519_seed_hex"]))
    assert b64url(sk.sign(m)) == env["sig"]  # Ed25519 is deterministic
    Ed25519PublicKey.from_public_bytes(unb64url(env["pk"])).verify(unb64url(env["sig"]), m)


def test_receiver_envelope_mac() -> None:
    v = vectors()
    env = json.loads(v["receiver_envelope"])
    assert set(env) == {"v", "kind", "payload", "sid", "seq", "mac"}
    m = message(v, env, v["receiver_peer"], v["sharer_peer"])
    assert hmac.new(bytes.fromhex(v["K_hex"]), m, hashlib.sha256).hexdigest() == env["mac"]


def vector_file() -> bytes:
    """The block vectors' file: byte j is j mod 251."""
    size = int(vectors()["file_size"])
    return bytes(range(251)) * (size // 251) + bytes(range(size % 251))


def test_block_and_file_hashes() -> None:
    v = vectors()
    data = vector_file()
    assert int(v["block_size"]) == BLOCK
    assert len(data) == 2 * BLOCK + 5 and all(
        data[j] == j % 251 for j in (0, 250, 251, BLOCK, len(data) - 1)
    )
    blocks = [data[i : i + BLOCK] for i in range(0, len(data), BLOCK)]
    assert [len(b) for b in blocks] == [BLOCK, BLOCK, 5]
    for i, b in enumerate(blocks):
        assert hashlib.sha256(b).hexdigest() == v[f"block_{i}_sha256"]
    # The file hash is over the file's bytes, not over the block hashes.
    assert hashlib.sha256(data).hexdigest() == v["file_sha256"]
    assert (
        hashlib.sha256(
            b"".join(bytes.fromhex(v[f"block_{i}_sha256"]) for i in range(3))
        ).hexdigest()
        != v["file_sha256"]
    )
    assert hashlib.sha256(b"").hexdigest() == v["empty_sha256"]


def test_resume_messages() -> None:
    v = vectors()
    get = json.loads(v["get_resume"])
    assert get == {"t": "get", "file": "3", "from": BLOCK}
    meta = json.loads(v["meta_resume"])
    assert meta == {
        "t": "meta",
        "size": int(v["file_size"]),
        "sha256": v["file_sha256"],
        "block": BLOCK,
        "from": BLOCK,
    }
    # Resuming at 1 MiB: blocks 1 and 2 follow, each announced with its own hash.
    assert json.loads(v["block_1_message"]) == {"t": "block", "i": 1, "sha256": v["block_1_sha256"]}
    assert json.loads(v["block_2_message"]) == {"t": "block", "i": 2, "sha256": v["block_2_sha256"]}
    assert json.loads(v["end_message"]) == {
        "t": "end",
        "size": int(v["file_size"]),
        "sha256": v["file_sha256"],
    }


def run_node(script: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (ROOT / "web" / "node_modules" / "@noble" / "curves").is_dir():
        pytest.skip("node or web/node_modules missing (make web)")
    path = tmp_path_factory.mktemp("vectors") / "vectors.json"
    path.write_text(json.dumps(vectors()))
    done = subprocess.run(
        [node, str(script), str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.fixture(scope="module")
def from_auth_js(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_node(NODE_SCRIPT, tmp_path_factory)


@pytest.fixture(scope="module")
def from_blocks_js(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_node(BLOCKS_SCRIPT, tmp_path_factory)


def test_blocks_js_computes_the_same_vectors(from_blocks_js: dict[str, Any]) -> None:
    v = vectors()
    got = from_blocks_js
    assert got["block_size"] == BLOCK
    assert got["file_sha256"] == v["file_sha256"]
    assert got["blocks"] == [v["block_0_sha256"], v["block_1_sha256"], v["block_2_sha256"]]
    assert got["same_with_small_reads"] is True
    assert got["empty_sha256"] == v["empty_sha256"]
    # Byte for byte: the messages as the document shows them.
    for name in ("get_resume", "meta_resume", "block_1_message", "block_2_message", "end_message"):
        assert got[name] == v[name], name


def test_blocks_js_starting_offsets(from_blocks_js: dict[str, Any]) -> None:
    size = int(vectors()["file_size"])
    assert from_blocks_js["valid_from"] == {
        "0": True,
        str(BLOCK): True,
        str(2 * BLOCK): True,
        str(size): True,  # the end itself: meta, then end
        str(3 * BLOCK): False,  # beyond the file
        str(-BLOCK): False,
        "1": False,  # inside a block
        str(int(1.5 * BLOCK)): False,
    }
    assert from_blocks_js["valid_from_at_end"] is True
    assert from_blocks_js["meta_fits"] is True
    assert from_blocks_js["meta_other_from"] is False
    assert from_blocks_js["meta_other_block"] is False


def test_auth_js_computes_the_same_vectors(from_auth_js: dict[str, Any]) -> None:
    v = vectors()
    for name in ("pk_hex", "commit", "fragment", "room", "K_hex"):
        want = v["ed25519_pk_hex"] if name == "pk_hex" else v[name]
        assert from_auth_js[name] == want, name
    assert from_auth_js["parsed"] == {"version": 3, "secret": v["secret"], "commit": v["commit"]}
    # Byte for byte: the same fields, in the same order, as the document shows.
    assert from_auth_js["sharer_envelope"] == v["sharer_envelope"]
    assert from_auth_js["receiver_envelope"] == v["receiver_envelope"]


def test_auth_js_recipient_rules(from_auth_js: dict[str, Any]) -> None:
    assert from_auth_js["rules"] == {
        "receiver_accepts_sharer_offer": "ok",
        "sharer_accepts_receiver_hello": "ok",
        "replayed_offer": "replay",
        "later_candidate": "ok",
        "reordered_candidate": "replay",
        "other_sid_same_peer": "replay",
        "moved_to_other_recipient": "bad-mac",
        "altered_payload": "bad-mac",
        "version_1": "malformed",
        "version_2": "malformed",
        "no_seq": "malformed",
        "impostor_offer": "impostor",
        "impostor_refuse": "impostor",
        "unsigned_offer": "impostor",
        "unsigned_hello_to_receiver": "ok",
        "stolen_pk_and_sig": "impostor",
        "offer_to_sharer": "impostor",
        "claims_sharer_when_altered": True,
        "impostor_does_not_claim_sharer": False,
    }


def test_auth_js_parses_links(from_auth_js: dict[str, Any]) -> None:
    v = vectors()
    got = from_auth_js["fragments"]
    assert got[v["fragment"]] == {"version": 3, "secret": v["secret"], "commit": v["commit"]}
    assert got[v["secret"]] == {"version": 1}, "a bare secret is a version-1 link, refused by name"
    assert got[f"2.{v['secret']}.{v['commit']}"] == {"version": 2}, (
        "a version-2 link, refused by name"
    )
    assert got[f"3.{v['secret']}"] is None
    assert got[f"3.{v['secret']}.{v['commit']}x"] is None
    # Not the canonical encoding of 16 bytes (the last character carries stray bits).
    assert got[f"3.{v['secret'][:21]}B.{v['commit']}"] is None
