"""Block I/O of the writable layer: reading and checking runs of blocks, writing sealed
blocks in batches, and the cache of decrypted file blocks. A part of Store
(writable_store.py), kept apart to keep each module short.

Two things make this fast in Python on a virtual machine, where touching fresh memory
costs more (a page fault per 4 KiB) than AES-GCM does: sealed blocks go into one staging
buffer that is reused (AESGCM.encrypt_into), and reads go into one reused buffer and are
decrypted straight into cache buffers (decrypt_into), whose memory evicted blocks pass on.
"""
import stat as st_mod
from collections import OrderedDict

from cryptography.exceptions import InvalidTag

from .format import BLOCK_SIZE, KIND_DATA, KIND_INDEX, POSITION_PACK
from .writable_node import ZERO_BLOCK

READ_AHEAD = 32                      # data blocks fetched together on a cache miss
STAGE_SLOTS = 256                    # sealed blocks held before they are written (1 MiB)
_SLOT = BLOCK_SIZE + 16              # a sealed block and its tag
_SPARE = 256                         # evicted cache buffers kept for reuse
_READ_RUN = 256                      # blocks read with one call at most


class BlockIO:
    def init_blocks(self, cache_blocks):
        self.cache = OrderedDict()      # (ino, block) -> bytearray, least recent first
        self.cache_limit = max(16, cache_blocks)
        self.staging = memoryview(bytearray(STAGE_SLOTS * _SLOT))
        self.staged = 0
        self.staged_nodes = set()
        self.spare = []                 # buffers of evicted blocks, reused
        self.read_buf = memoryview(bytearray(_READ_RUN * BLOCK_SIZE))
        self.unseal_buf = bytearray(_SLOT)

    def _block_name(self, node, kind, level, i):
        what = self.describe(node)
        if kind == KIND_INDEX:
            return f"index block {i} (level {level}) of {what}"
        if node.ino is not None and st_mod.S_ISREG(node.mode):
            what = what.split(" ", 1)[1]          # "block 2 of /data/log", as the image says
        return f"block {i} of {what}"

    # ---- reading --------------------------------------------------------------------------------
    def _pread(self, node, length, offset):
        try:
            return self.disk.pread(node.name, length, offset)
        except FileNotFoundError:
            self.fail(f"node file {node.name} of {self.describe(node)} is missing")

    def read_block(self, node, kind, level, i, nonce, loc, mac, aead=None):
        raw = self._pread(node, BLOCK_SIZE, loc * BLOCK_SIZE)
        if len(raw) == BLOCK_SIZE:
            try:
                return (aead or node.aead).decrypt(
                    nonce, raw + mac, POSITION_PACK(node.node_id, kind, level, i))
            except InvalidTag:
                pass
        self.fail(f"{self._block_name(node, kind, level, i)} fails its MAC")

    def read_run(self, node, first, count, into=None):
        """Plaintexts of data blocks [first, first+count); holes read as zeros. With
        `into` (zeroed bytearrays), the blocks are decrypted into those instead."""
        entries = [node.entry(0, i) for i in range(first, first + count)]
        out = into if into is not None else [ZERO_BLOCK] * count
        aead, nid = node.aead, node.node_id
        k = 0
        while k < count:
            loc = entries[k][1]
            if not loc:
                k += 1
                continue
            run = 1
            while k + run < count and entries[k + run][1] == loc + run and run < _READ_RUN:
                run += 1
            raw = self._pread_run(node, run, loc)
            for m in range(run):
                nonce, _, mac = entries[k + m]
                i = first + k + m
                ok = False
                if len(raw) >= (m + 1) * BLOCK_SIZE:
                    sealed = self.unseal_buf
                    sealed[:BLOCK_SIZE] = raw[m * BLOCK_SIZE:(m + 1) * BLOCK_SIZE]
                    sealed[BLOCK_SIZE:] = mac
                    try:
                        if into is None:
                            out[k + m] = aead.decrypt(nonce, sealed, POSITION_PACK(nid, KIND_DATA, 0, i))
                        else:
                            aead.decrypt_into(nonce, sealed, POSITION_PACK(nid, KIND_DATA, 0, i),
                                              into[k + m])
                        ok = True
                    except InvalidTag:
                        pass
                if not ok:
                    self.fail(f"{self._block_name(node, KIND_DATA, 0, i)} fails its MAC")
            k += run
        return out

    def _pread_run(self, node, run, loc):
        """`run` blocks from `loc` into the reused read buffer (a view of what was read)."""
        run = min(run, _READ_RUN)
        view = self.read_buf[:run * BLOCK_SIZE]
        try:
            got = self.disk.preadv(node.name, view, loc * BLOCK_SIZE)
        except FileNotFoundError:
            self.fail(f"node file {node.name} of {self.describe(node)} is missing")
        return view[:got]

    def read_content(self, node):
        """The whole data of a directory, symlink or the table (kept as node.content)."""
        if node.content is None:
            parts = []
            for first in range(0, node.nblocks, 256):
                parts.extend(self.read_run(node, first, min(256, node.nblocks - first)))
            node.content = b"".join(parts)[:node.size]
        return node.content

    # ---- writing --------------------------------------------------------------------------------
    def stage(self, node):
        """A free slot of the staging buffer for one sealed block of `node`."""
        if self.staged == STAGE_SLOTS:
            self.write_staged()
        k = self.staged
        self.staged = k + 1
        self.staged_nodes.add(node)
        return self.staging[k * _SLOT:(k + 1) * _SLOT]

    def write_staged(self):
        for node in sorted(self.staged_nodes, key=lambda n: n.name):
            self.write_pending(node)
        self.staged_nodes.clear()
        self.staged = 0

    def write_pending(self, node):
        if not node.pending:
            return
        if not node.file_exists:
            self.disk.fd(node.name, create=True)
            node.file_exists = True
        self.disk.write_blocks(node.name, node.pending)
        node.file_blocks = max(node.file_blocks, node.pending[-1][0] + 1)
        node.pending.clear()        # in place: a sealing loop may hold the list
        self.unsynced.add(node.name)

    # ---- the cache of file data -------------------------------------------------------------------
    def file_block(self, node, i):
        """Data block i of a regular file, cached: a bytearray the caller may change
        (dirty it). It stays in the cache until the next file_block or evict call."""
        key = (node.ino, i)
        cache = self.cache
        buf = cache.get(key)
        if buf is not None:
            cache.move_to_end(key)
            return buf
        count = 1
        limit = min(READ_AHEAD, node.nblocks - i)
        while count < limit and (node.ino, i + count) not in cache:
            count += 1
        # room first, so that none of the blocks fetched now is evicted before it is used
        self.evict(room=count)
        bufs = [self.new_buffer() for _ in range(count)]
        if i < node.nblocks:
            self.read_run(node, i, count, into=bufs)
        for k, b in enumerate(bufs):
            cache[(node.ino, i + k)] = b
            node.cached.add(i + k)
        return bufs[0]

    def new_buffer(self):
        """A zeroed 4 KiB buffer for the cache (a reused one if there is)."""
        if self.spare:
            b = self.spare.pop()
            b[:] = ZERO_BLOCK
            return b
        return bytearray(BLOCK_SIZE)

    def evict(self, room=0):
        """Keep the cache within its bound (with `room` blocks to spare): dirty blocks
        are sealed and written, not committed: they go where the last commit has
        nothing. Evicted buffers are reused, so no caller may keep one across this."""
        if len(self.cache) + room <= self.cache_limit:
            return
        target = max(self.cache_limit - self.cache_limit // 8 - room, 0)
        victims = {}
        while len(self.cache) > target:
            (ino, i), buf = self.cache.popitem(last=False)
            node = self.nodes.get(ino)
            if node is None:
                continue
            node.cached.discard(i)
            if i in node.dirty:
                node.dirty.discard(i)
                victims.setdefault(node, []).append((i, buf))
            elif len(self.spare) < _SPARE:
                self.spare.append(buf)
        for node, blocks in victims.items():
            node.put_blocks(sorted(blocks, key=lambda b: b[0]))
            self.spare.extend(b for _, b in blocks)
        self.write_staged()
        del self.spare[_SPARE:]

    def drop_cached(self, node, first):
        """Forget cached blocks >= first (the file was cut)."""
        for i in [i for i in node.cached if i >= first]:
            self.cache.pop((node.ino, i), None)
            node.cached.discard(i)
            node.dirty.discard(i)

