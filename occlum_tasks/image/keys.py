"""Image keys and MACs as text, and the key derivations of SEFS (docs/formats.md).

Occlum writes keys and root MACs as 16 hex pairs joined by '-'
("0f-1e-...-a5", 47 characters); `occlum gen-image-key` prints that form and
`--image-key` files hold it.

Every derived value is HMAC-SHA-256 under the image key of a fixed ASCII label, a zero
byte and fixed-length inputs (a variable-length input, such as a path, comes last), cut
to the size needed. Without a key (an integrity-only image), the derivations that are
needed at all use plain SHA-256 of the same bytes: there is nothing secret to protect,
only determinism.
"""
import hashlib
import hmac
import os
import re
import struct
from pathlib import Path

from .format import KEY_SIZE, MAC_SIZE, NODE_ID_SIZE

_PAIR = re.compile(r"[0-9a-fA-F]{2}")


def _parse_pairs(text, what, count):
    if not isinstance(text, str):
        raise ValueError(f"{what} must be text, got {type(text).__name__}")
    s = text.strip()
    parts = s.split("-")
    if len(parts) != count or not all(_PAIR.fullmatch(p) for p in parts):
        shown = s if len(s) <= 60 else s[:57] + "..."
        raise ValueError(
            f"invalid {what} {shown!r}: expected {count} hex byte pairs joined by '-' "
            f"(like 'c7-32-b3-ed-...', {3 * count - 1} characters)")
    return bytes(int(p, 16) for p in parts)


def parse_image_key(text):
    """The 16-byte key from its text form, as `occlum gen-image-key` writes it."""
    return _parse_pairs(text, "image key", KEY_SIZE)


def generate_image_key():
    """16 random bytes as lowercase hex pairs joined by '-' (47 characters)."""
    return format_mac(os.urandom(KEY_SIZE))


def format_mac(b):
    """Bytes as lowercase hex pairs joined by '-'; .ROOT_MAC files hold the root MAC so."""
    b = bytes(b)
    if not b:
        raise ValueError("cannot format an empty MAC")
    return "-".join(f"{x:02x}" for x in b)


def parse_mac(s):
    """A 16-byte MAC from its text form (surrounding white space is ignored)."""
    return _parse_pairs(s, "MAC", MAC_SIZE)


def check_key(key):
    """None, or exactly 16 bytes: anything else is a caller's mistake, said clearly."""
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
        raise ValueError("the image key must be 16 bytes (use parse_image_key on its text form)")
    return bytes(key)


# ---- derivations ----------------------------------------------------------------------

def _prf(key, label, *parts):
    msg = label + b"\0" + b"".join(parts)
    if key is None:
        return hashlib.sha256(msg).digest()
    return hmac.new(key, msg, hashlib.sha256).digest()


def node_id(key, path):
    """A node's 16-byte id from its absolute path in the image (bytes, e.g. b"/bin/ls").

    Tying the id to the path is what lets an unchanged file keep its node file across
    rebuilds; keyed in an encrypted image so that ids say nothing about paths."""
    return _prf(key, b"SEFS node id", path)[:NODE_ID_SIZE]


# Files are digested in chunks of this size for the key derivation; the writer reads
# files in the same chunks, and checks a second reading against the first chunk by
# chunk, so that a file changing under it cannot make it encrypt two plaintexts under
# one (key, nonce).
DIGEST_CHUNK = 1 << 20


def content_digest(mode, size, chunk_digests):
    """What a node's key is derived from: its mode, size and data.

    chunk_digests: SHA-256 of each DIGEST_CHUNK-sized piece of the data, in order (the
    last piece may be shorter; empty data has none). Every other field of an image's
    node header is a constant or follows from these and the node id."""
    return hashlib.sha256(b"SEFS content\0" + struct.pack("<IQ", mode, size)
                          + b"".join(chunk_digests)).digest()


def file_key(key, nid, digest):
    """The AES-128 key of one node of an encrypted image."""
    return _prf(key, b"SEFS file key", nid, digest)[:KEY_SIZE]


def key_check(key):
    """8 bytes stored in the superblock that tell a wrong key from a tampered image."""
    return _prf(key, b"SEFS key check")[:8]


def superblock_salt(key, root_ref):
    """Deterministic salt for the superblock's seal: a function of what it seals."""
    return _prf(key, b"SEFS superblock salt", root_ref)[:16]


def superblock_key(key, salt):
    """The superblock's sealing key (used with a zero nonce: one key per salt)."""
    return _prf(key, b"SEFS superblock key", salt)[:KEY_SIZE]


def mount_key(layer_key, target):
    """The key of the writable layer mounted at `target` ("/" for the upper layer of the
    root unionfs, "/data" for a sefs at /data), from the enclave's layer key (sgx.keys.
    writable_layer_key, an EGETKEY sealing key). Each mount's layer thus has its own key:
    a layer copied over another mount's folder does not open there, where it would show
    one mount's files under another. The target is normalised ("//data/" is "/data")."""
    if not isinstance(layer_key, (bytes, bytearray)) or len(layer_key) != KEY_SIZE:
        raise ValueError("the writable layer key must be 16 bytes")
    canonical = "/" + "/".join(p for p in target.split("/") if p not in ("", "."))
    return _prf(bytes(layer_key), b"SEFS mount key",
                canonical.encode("utf-8", "surrogateescape"))[:KEY_SIZE]


def read_image_key_file(path) -> bytes:
    """The key in an `--image-key` file (as `occlum gen-image-key` writes it); any
    problem is one line naming the file."""
    from ..errors import OcclumError
    try:
        return parse_image_key(Path(path).read_text())
    except FileNotFoundError:
        raise OcclumError(f"--image-key {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OcclumError(f"--image-key {path}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise OcclumError(f"--image-key {path}: {exc}") from None
