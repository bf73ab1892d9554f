"""The measured loader's bytecode cache: code compiled from measured sources, kept
across runs under a MAC only the platform can make.

Compiling the runtime from source costs ~130 ms, more than the rest of `occlum run`'s
start-up; Python's own __pycache__ cannot be used, since nothing ties a .pyc's code to
its source (a planted .pyc with the source's mtime and size is taken as current, and a
PEP 552 checked .pyc only ties the header, not the code, to the source). So the
loader compiles each measured module once and keeps the code here, MACed with a key
derived from the emulated platform secret (sgx/keys.py): a cache file that anyone else
wrote or changed fails its MAC and is compiled again, so the code that runs is always
what the loader itself compiled from the bytes it hashed.

The same folder keeps, under the same MAC, the hash of unicorn's library with the file's
identity (runtime_loader.SealedLibrary): a tuple instead of code.

Where: a folder `runtime-code/` beside the platform secret (one cache per secret, so
per host user). Each entry is one file named by its ident (below), written to a
temporary name and renamed; failing to write is not an error (the next run compiles
again). Entries of sources that no longer exist are not removed (about 15 KB each).

Entry (all fields fixed size except the code):

| offset | size | field |
|---|---|---|
| 0 | 16 | magic `OCCLUMPY-CODE-1\\0` |
| 16 | 32 | HMAC-SHA-256 under the cache key of: magic, ident, code |
| 48 | rest | `marshal.dumps` of the module's code object (or of the library's record) |

ident = SHA-256 of "<cache tag>\\0<optimize level>\\0<source path>\\0<source SHA-256 hex>":
the interpreter's bytecode version, `-O`, where the code says it came from (tracebacks
name that path) and the exact source bytes.
cache key = HMAC-SHA-256(platform secret, "occlum-py runtime code cache v1").
"""
from __future__ import annotations

import hashlib
import hmac
import marshal
import os
import sys
from pathlib import Path

MAGIC = b"OCCLUMPY-CODE-1\0"
MAC_SIZE = 32
KEY_LABEL = b"occlum-py runtime code cache v1"
FOLDER_NAME = "runtime-code"


def cache_key(platform_secret: bytes) -> bytes:
    return hmac.new(platform_secret, KEY_LABEL, hashlib.sha256).digest()


class CodeCache:
    def __init__(self, folder: Path, key: bytes):
        self.folder = Path(folder)
        self.key = key

    @staticmethod
    def ident(origin: str, source_sha256: str) -> bytes:
        text = f"{sys.implementation.cache_tag}\0{sys.flags.optimize}\0{origin}\0{source_sha256}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()

    def _mac(self, ident: bytes, code: bytes) -> bytes:
        return hmac.new(self.key, MAGIC + ident + code, hashlib.sha256).digest()

    def load(self, ident: bytes):
        """The cached code object, or None (absent, unreadable, or failing its MAC)."""
        try:
            fd = os.open(self.folder / ident.hex(), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read()
        head, mac, code = data[:len(MAGIC)], data[len(MAGIC):len(MAGIC) + MAC_SIZE], \
            data[len(MAGIC) + MAC_SIZE:]
        if head != MAGIC or not hmac.compare_digest(mac, self._mac(ident, code)):
            return None
        return marshal.loads(code)

    def store(self, ident: bytes, code) -> None:
        data = marshal.dumps(code)
        blob = MAGIC + self._mac(ident, data) + data
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.folder / f".{ident.hex()}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
                os.replace(tmp, self.folder / ident.hex())
            except OSError:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass        # a cache: the next run compiles again
