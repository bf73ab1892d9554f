"""Sealing one block: the single place where SEFS turns bytes into (stored bytes, tag).

Two modes, chosen once per image by its ENCRYPTED flag (docs/formats.md, "MACs"):

- integrity-only: stored = the plaintext; tag = SHA-256(position || aad || plaintext)
  cut to 16 bytes. No key: the tree is a hash tree, and the root MAC in the measured
  configuration is what makes it trustworthy. (GMAC under a public key would not do:
  anyone could forge it; a hash cannot be forged without a second preimage.)
- encrypted: AES-128-GCM under the node's key; the position and aad are the associated
  data; the tag is GCM's 16-byte tag.
"""
import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .format import MAC_SIZE


def hash_tag(pos, aad, data):
    h = hashlib.sha256(pos)
    if aad:
        h.update(aad)
    h.update(data)
    return h.digest()[:MAC_SIZE]


def seal(key, nonce, pos, data, aad=b""):
    """(stored bytes, tag) for one block; key None means integrity-only."""
    if key is None:
        return bytes(data), hash_tag(pos, aad, data)
    out = AESGCM(key).encrypt(nonce, bytes(data), pos + aad)
    return out[:-MAC_SIZE], out[-MAC_SIZE:]


def unseal(key, nonce, pos, stored, tag, aad=b""):
    """The plaintext, or None if the tag does not match."""
    if key is None:
        return bytes(stored) if hash_tag(pos, aad, stored) == tag else None
    try:
        return AESGCM(key).decrypt(nonce, bytes(stored) + tag, pos + aad)
    except InvalidTag:
        return None


class Opener:
    """unseal() with the AES-GCM object kept for one key (a node's blocks share it)."""

    __slots__ = ("key", "_aead")

    def __init__(self, key):
        self.key = key
        self._aead = AESGCM(key) if key is not None else None

    def open(self, nonce, pos, stored, tag):
        if self._aead is None:
            h = hashlib.sha256(pos)
            h.update(stored)
            return bytes(stored) if h.digest()[:MAC_SIZE] == tag else None
        try:
            return self._aead.decrypt(nonce, bytes(stored) + tag, pos)
        except InvalidTag:
            return None
