"""Encoding one SEFS node: seal its data blocks, build its index levels and its header.

Layout of a node file as an image writer makes it (the reader follows the locations in
the entries, so other writers may place blocks differently):

    location 0           the node header
    locations 1..n       data blocks 0..n-1
    then                 index blocks of level 1, of level 2, ..., each in order

The hot loop seals 4 KiB blocks straight out of a 1 MiB read buffer through memoryview
slices: one SHA-256 (integrity-only) or one AES-GCM call (encrypted) per block.
"""
import hashlib
import os
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import OcclumError
from . import keys as K
from .format import (
    BLOCK_SIZE, ENTRIES_PER_INDEX, ENTRY_PACK, FORMAT_VERSION, HEADER_ENTRIES, KIND_DATA,
    KIND_HEADER, KIND_INDEX, MAC_SIZE, NODE_HEADER, NODE_MAGIC, NODE_REF, POSITION_PACK,
    ZERO_KEY, ZERO_NONCE, blocks_for, image_nonce, tree_depth,
)
from .seal import seal

CHUNK = K.DIGEST_CHUNK      # read size; also the unit of the encrypted key digest


def _padded(n):
    return -(-n // BLOCK_SIZE) * BLOCK_SIZE


_tls = threading.local()


def _scratch(name):
    """A CHUNK-sized buffer reused by this thread. Fresh 1 MiB allocations per file cost
    more than the hashing on a VM whose new pages fault in slowly, so keep them."""
    buf = getattr(_tls, name, None)
    if buf is None:
        buf = bytearray(CHUNK)
        setattr(_tls, name, buf)
    return buf


class FileChunks:
    """A regular file read in CHUNK pieces, each zero-padded to whole blocks.

    Yields (memoryview over a reused buffer, bytes of data in it); the view is valid
    only until the next piece. Iterating again reads the file again."""

    def __init__(self, fd, shown):
        self.fd, self.shown = fd, shown
        self.buf = _scratch("read")

    def __iter__(self):
        fd, buf = self.fd, self.buf
        mv = memoryview(buf)
        offset = 0
        while True:
            n = 0
            while n < CHUNK:        # a read may return less than asked before the end
                try:
                    got = os.preadv(fd, [mv[n:]], offset + n)
                except OSError as e:
                    raise OcclumError(f"{self.shown}: cannot read it ({e.strerror})") from None
                if got == 0:
                    break
                n += got
            if n == 0:
                return
            padded = _padded(n)
            if padded != n:
                buf[n:padded] = bytes(padded - n)
            yield mv[:padded], n
            offset += n
            if n < CHUNK:
                return


class BytesChunks:
    """Data already in memory (directory entries, a link target) in the same shape."""

    def __init__(self, data):
        self.data = bytes(data)

    def __iter__(self):
        data = self.data
        for off in range(0, len(data), CHUNK):
            piece = data[off:off + CHUNK]
            n = len(piece)
            yield memoryview(piece + bytes(_padded(n) - n)), n


class MemSink:
    """Collects a node file in memory (small nodes: written with a single call)."""

    def __init__(self):
        self.buf = bytearray()

    def pwrite(self, data, offset):
        end = offset + len(data)
        if len(self.buf) < end:
            self.buf.extend(bytes(end - len(self.buf)))
        self.buf[offset:end] = data


class FdSink:
    """Writes a node file through a file descriptor (large nodes)."""

    def __init__(self, fd):
        self.fd = fd

    def pwrite(self, data, offset):
        mv = memoryview(data)
        while mv:
            n = os.pwrite(self.fd, mv, offset)
            mv, offset = mv[n:], offset + n


@dataclass
class Encoded:
    mac: bytes          # tag of the header block: the node MAC, also its file name
    key: bytes | None   # the node's AES key (encrypted images)
    digest: bytes | None  # content digest the key came from (encrypted images)
    size: int           # data bytes
    node_size: int      # bytes of the node file


def node_ref(nid, mac, fkey, mode):
    """The NODE_REF a parent keeps for a node of an image."""
    return NODE_REF.pack(node_name=mac, node_id=nid, mac=mac,
                         key=fkey if fkey is not None else ZERO_KEY,
                         nonce=image_nonce(KIND_HEADER) if fkey is not None else ZERO_NONCE,
                         mode=mode)


def _changed(shown):
    return OcclumError(f"{shown}: changed while the image was built; build again")


def _checked(chunks, chunk_digests, shown):
    """The second reading of a large file, refused chunk by chunk if it differs, so
    that nothing but the digested content is ever encrypted under its key."""
    i = -1
    for i, (mv, n) in enumerate(chunks):
        if i >= len(chunk_digests) or hashlib.sha256(mv[:n]).digest() != chunk_digests[i]:
            raise _changed(shown)
        yield mv, n
    if i + 1 != len(chunk_digests):
        raise _changed(shown)


def encode_node(nid, mode, nlink, chunks, sink, *, image_key, flags, shown):
    """Seal one node into `sink`; returns Encoded. image_key None: integrity-only."""
    fkey = digest = None
    if image_key is not None:
        # The node key is derived from the whole content: digest it on a first reading
        # (keeping it when it fits one chunk), seal it on a second one.
        chunk_digests, size, kept = [], 0, None
        for mv, n in chunks:
            chunk_digests.append(hashlib.sha256(mv[:n]).digest())
            size += n
            if len(chunk_digests) == 1:
                kept = memoryview(_scratch("kept"))[:len(mv)]
                kept[:] = mv
                kept_n = n
            else:
                kept = None
        digest = K.content_digest(mode, size, chunk_digests)
        fkey = K.file_key(image_key, nid, digest)
        if kept is not None:
            chunks = [(kept, kept_n)]
        elif chunk_digests:
            chunks = _checked(chunks, chunk_digests, shown)
        else:
            chunks = []

    size, entries = _seal_data(nid, fkey, chunks, sink)
    nblocks = blocks_for(size)
    entries, total = _seal_index(nid, fkey, entries, nblocks, sink)
    header = NODE_HEADER.pack(
        magic=NODE_MAGIC, version=FORMAT_VERSION, flags=flags, mode=mode, node_id=nid,
        size=size, nblocks=nblocks, nlink=nlink, depth=tree_depth(nblocks),
        top_count=len(entries), total_blocks=total)
    block = header + b"".join(entries)
    block += bytes(BLOCK_SIZE - len(block))
    hnonce = image_nonce(KIND_HEADER) if fkey is not None else ZERO_NONCE
    stored, mac = seal(fkey, hnonce, POSITION_PACK(nid, KIND_HEADER, 0, 0), block)
    sink.pwrite(stored, 0)
    return Encoded(mac=mac, key=fkey, digest=digest, size=size, node_size=total * BLOCK_SIZE)


def _seal_data(nid, fkey, chunks, sink):
    """Seal and write the data blocks at locations 1..n; returns (size, entries)."""
    entries = []
    append = entries.append
    size, index, offset = 0, 0, BLOCK_SIZE
    sha256 = hashlib.sha256
    aead = AESGCM(fkey) if fkey is not None else None
    for mv, n in chunks:
        m = len(mv)
        if aead is None:
            # integrity-only: the stored block is the plaintext, hashed with its position
            for o in range(0, m, BLOCK_SIZE):
                h = sha256(POSITION_PACK(nid, KIND_DATA, 0, index))
                h.update(mv[o:o + BLOCK_SIZE])
                # data block `index` lives at location index + 1 (0 is the header)
                append(ENTRY_PACK(ZERO_NONCE, index + 1, h.digest()[:MAC_SIZE]))
                index += 1
            sink.pwrite(mv, offset)
        else:
            out = memoryview(_scratch("sealed"))[:m]
            for o in range(0, m, BLOCK_SIZE):
                nonce = image_nonce(KIND_DATA, 0, index)
                ct = aead.encrypt(nonce, mv[o:o + BLOCK_SIZE], POSITION_PACK(nid, KIND_DATA, 0, index))
                out[o:o + BLOCK_SIZE] = memoryview(ct)[:BLOCK_SIZE]
                append(ENTRY_PACK(nonce, index + 1, ct[BLOCK_SIZE:]))
                index += 1
            sink.pwrite(out, offset)
        offset += m
        size += n
    return size, entries


def _seal_index(nid, fkey, entries, nblocks, sink):
    """Build the index levels above the data; returns (header entries, blocks in file)."""
    loc = 1 + nblocks
    level = 0
    while len(entries) > HEADER_ENTRIES:
        level += 1
        upper, blocks = [], []
        for j in range(-(-len(entries) // ENTRIES_PER_INDEX)):
            blk = b"".join(entries[j * ENTRIES_PER_INDEX:(j + 1) * ENTRIES_PER_INDEX])
            blk += bytes(BLOCK_SIZE - len(blk))
            nonce = image_nonce(KIND_INDEX, level, j) if fkey is not None else ZERO_NONCE
            stored, mac = seal(fkey, nonce, POSITION_PACK(nid, KIND_INDEX, level, j), blk)
            blocks.append(stored)
            upper.append(ENTRY_PACK(nonce, loc + j, mac))
        sink.pwrite(b"".join(blocks), loc * BLOCK_SIZE)
        loc += len(blocks)
        entries = upper
    return entries, loc
