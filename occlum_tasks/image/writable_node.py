"""One node of the writable layer in memory: its inode fields and its block tree.

The tree has the shape an image's has (format.py, docs/formats.md section 5): data
blocks at level 0, index blocks of 128 entries above them, the top level's entries in
the header. Index blocks are kept in memory once read (they are metadata: one per
512 KiB of data); the header is rebuilt from the fields here at each commit.

Copy on write, per location of the node file. Each location carries two bits:
COMMITTED (the last commit's tree uses it) and CURRENT (the tree in memory uses it).
A block is rewritten in place only if its location is not COMMITTED, that is if it was
written since the last commit; otherwise it moves to a location that neither tree
uses. So the committed tree stays intact on disk until the next commit replaces it,
and a kill at any moment leaves it readable. After a commit the two trees are the
same again (`after_commit`), and locations that only the old one used become free.
"""
import struct
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .format import (
    BLOCK_SIZE, ENTRIES_PER_INDEX, ENTRY, ENTRY_PACK, ENTRY_SIZE, ENTRY_UNPACK_FROM, FORMAT_VERSION,
    HEADER_ENTRIES, KIND_DATA, KIND_HEADER, KIND_INDEX, NODE_HEADER, NODE_MAGIC,
    POSITION_PACK, blocks_for, tree_depth,
)
from .writable_format import FIRST_DATA_LOCATION, HEADER_SLOTS, KNOWN_NODE_FLAGS, WRITABLE_FLAGS

COMMITTED, CURRENT, RESERVED = 1, 2, 4
# after a commit: in use now -> committed and in use; used only before -> free
_AFTER_COMMIT = bytes(((COMMITTED | CURRENT) if v & CURRENT else 0) | (v & RESERVED)
                      for v in range(256))
_IN_USE = bytes(1 if v & CURRENT else 0 for v in range(256))

ZERO_BLOCK = bytes(BLOCK_SIZE)
ZERO_ENTRY = bytes(ENTRY_SIZE)
_TOP_BYTES = HEADER_ENTRIES * ENTRY_SIZE
_RESERVED_FROM = NODE_HEADER.offsets["node_flags"] + 4
_LOCATION_FROM = struct.Struct("<12xI").unpack_from
_ENTRY_PACK_INTO = ENTRY.struct.pack_into


def level_count(nblocks, level):
    """Blocks at `level` of a tree over `nblocks` data blocks."""
    for _ in range(level):
        nblocks = -(-nblocks // ENTRIES_PER_INDEX)
    return nblocks


class Node:
    """A file, directory, symlink or the inode table, as the store holds it.

    store: the Store (reads blocks, draws nonces, names the node in errors).
    ino: inode number (None for the inode table)."""

    __slots__ = ("store", "ino", "node_id", "name", "key", "aead", "mode", "size", "nlink",
                 "uid", "gid", "atime_ns", "mtime_ns", "ctime_ns", "node_flags", "seals",
                 "depth", "top", "index", "dirty_index", "slot", "total_blocks", "locs", "hint",
                 "file_blocks", "file_exists", "pending", "cached", "dirty", "content",
                 "entries", "target", "refs")

    def __init__(self, store, ino, node_id, key, mode, now=None):
        self.store, self.ino = store, ino
        self.node_id, self.name = node_id, node_id.hex()
        self.key, self.aead = key, AESGCM(key)
        self.mode = mode
        self.size = 0
        self.nlink = 1
        self.uid = self.gid = 0
        now = time.time_ns() if now is None else now
        self.atime_ns = self.mtime_ns = self.ctime_ns = now
        self.node_flags = 0
        self.seals = 0              # blocks sealed under self.key (header "generation")
        self.depth = 0
        self.top = bytearray()      # the header's entries, as far as they are non-zero
        self.index = {}             # (level, j) -> bytearray: index blocks read or made
        self.dirty_index = set()    # (level, j) changed since sealed
        self.slot = None            # header slot of the committed header; None: never committed
        self.total_blocks = 0       # from the committed header
        self.locs = None            # bytearray of location bits; None until first change
        self.hint = FIRST_DATA_LOCATION
        self.file_blocks = 0        # length of the node file in blocks, as far as known
        self.file_exists = False
        self.pending = []           # [(location, sealed bytes)] not yet written
        # regular files: data blocks in the store's cache
        self.cached = set()
        self.dirty = set()
        # directories, symlinks, the inode table: the data the disk holds, whole
        self.content = None
        self.entries = None         # directories: {name: (ino, type)}
        self.target = None          # symlinks: the target, once known
        self.refs = 0               # open references (file descriptors)

    @property
    def nblocks(self):
        return blocks_for(self.size)

    # ---- entries of the tree -------------------------------------------------------------
    def entry(self, level, i):
        """(nonce, location, mac) of block i at `level`; location 0 is a hole."""
        if level == self.depth:
            if (i + 1) * ENTRY_SIZE > len(self.top):
                return ZERO_ENTRY[:12], 0, ZERO_ENTRY[:16]
            return ENTRY_UNPACK_FROM(self.top, i * ENTRY_SIZE)
        blk = self.index_block(level + 1, i // ENTRIES_PER_INDEX, create=False)
        return ENTRY_UNPACK_FROM(blk, (i % ENTRIES_PER_INDEX) * ENTRY_SIZE)

    def set_entry(self, level, i, packed):
        if level == self.depth:
            end = (i + 1) * ENTRY_SIZE
            if len(self.top) < end:
                self.top.extend(bytes(end - len(self.top)))
            self.top[end - ENTRY_SIZE:end] = packed
            return
        j = i // ENTRIES_PER_INDEX
        blk = self.index_block(level + 1, j, create=True)
        off = (i % ENTRIES_PER_INDEX) * ENTRY_SIZE
        blk[off:off + ENTRY_SIZE] = packed
        self.dirty_index.add((level + 1, j))

    def index_block(self, level, j, create):
        blk = self.index.get((level, j))
        if blk is not None:
            return blk
        nonce, loc, mac = self.entry(level, j)
        if loc == 0:
            if not create:
                return ZERO_BLOCK       # a hole: nothing below it was ever written
            blk = bytearray(BLOCK_SIZE)
        else:
            blk = bytearray(self.store.read_block(self, KIND_INDEX, level, j, nonce, loc, mac))
        self.index[(level, j)] = blk
        return blk

    # ---- locations ---------------------------------------------------------------------------
    def walk(self):
        """(level, index, nonce, location, mac) of every entry that is not a hole, top
        down; index blocks are read (and checked) on the way. Holes are skipped whole,
        so a sparse terabyte costs nothing."""
        stack = [(self.depth, 0, self.top)]
        while stack:
            level, base, buf = stack.pop()
            for k in range(len(buf) // ENTRY_SIZE):
                nonce, loc, mac = ENTRY_UNPACK_FROM(buf, k * ENTRY_SIZE)
                if loc:
                    yield level, base + k, nonce, loc, mac
                    if level:
                        blk = self.index_block(level, base + k, create=False)
                        stack.append((level - 1, (base + k) * ENTRIES_PER_INDEX, blk))

    def load_tree(self):
        """Read every index block and note which locations the committed tree uses.

        Needed once before the node changes: a new block must go where the committed
        tree has nothing."""
        if self.locs is not None:
            return
        locs = bytearray(max(self.file_blocks, self.total_blocks, HEADER_SLOTS))
        locs[0:HEADER_SLOTS] = bytes([RESERVED]) * HEADER_SLOTS
        self.locs = locs
        for _, _, _, loc, _ in self.walk():
            self._mark(loc)
        self.hint = FIRST_DATA_LOCATION

    def _mark(self, loc):
        locs = self.locs
        if loc < FIRST_DATA_LOCATION or loc >= self.total_blocks:
            self.store.malformed(self, f"location {loc} is outside its node file")
        if loc >= len(locs):
            locs.extend(bytes(loc + 1 - len(locs)))
        if locs[loc]:
            self.store.malformed(self, f"location {loc} is used twice")
        locs[loc] = COMMITTED | CURRENT

    def _alloc(self):
        locs = self.locs
        loc = locs.find(0, self.hint)
        if loc < 0:
            loc = len(locs)
            locs.append(0)
        locs[loc] = CURRENT
        self.hint = loc + 1
        return loc

    def free(self, loc):
        if loc:
            self.locs[loc] &= ~CURRENT
            if not self.locs[loc] and loc < self.hint:
                self.hint = loc

    def seal(self, kind, level, index, plain, old_loc):
        """Seal a block under a fresh nonce; returns its packed entry. The block goes
        back to its location only if the committed tree does not use it."""
        if old_loc and not self.locs[old_loc] & COMMITTED:
            loc = old_loc
        else:
            self.free(old_loc)
            loc = self._alloc()
        return self._seal_at(loc, plain, POSITION_PACK(self.node_id, kind, level, index))

    def _seal_at(self, loc, plain, pos):
        # sealed straight into the store's staging buffer, written from there in batches
        nonce = self.store.nonce()
        buf = self.store.stage(self)
        self.aead.encrypt_into(nonce, plain, pos, buf)
        self.pending.append((loc, buf[:BLOCK_SIZE]))
        self.seals += 1
        return ENTRY_PACK(nonce, loc, bytes(buf[BLOCK_SIZE:]))

    def put_block(self, i, plain):
        """Data block i has this plaintext now (sealed at once; written by the store)."""
        self.put_blocks([(i, plain)])

    def put_blocks(self, items):
        """put_block for [(i, plaintext)] sorted by i: the hot loop of a commit or an
        eviction, so the entry table is walked one index block at a time."""
        store, aead, nid, locs = self.store, self.aead, self.node_id, self.locs
        pending = self.pending
        if self.depth == 0:
            end = (items[-1][0] + 1) * ENTRY_SIZE
            if len(self.top) < end:
                self.top.extend(bytes(end - len(self.top)))
            blk, base = self.top, 0
        else:
            blk, base = None, -1
        sealed = 0
        for i, plain in items:
            if self.depth and i // ENTRIES_PER_INDEX != base:
                base = i // ENTRIES_PER_INDEX
                blk = self.index_block(1, base, create=True)
                self.dirty_index.add((1, base))
            off = (i % ENTRIES_PER_INDEX if self.depth else i) * ENTRY_SIZE
            loc = _LOCATION_FROM(blk, off)[0]
            if plain == ZERO_BLOCK:         # zeros need no storage: a hole
                self.free(loc)
                blk[off:off + ENTRY_SIZE] = ZERO_ENTRY
                continue
            if not loc or locs[loc] & COMMITTED:    # copy on write
                self.free(loc)
                loc = self._alloc()
            nonce = store.nonce()
            buf = store.stage(self)
            aead.encrypt_into(nonce, plain, POSITION_PACK(nid, KIND_DATA, 0, i), buf)
            pending.append((loc, buf[:BLOCK_SIZE]))
            _ENTRY_PACK_INTO(blk, off, nonce, loc, bytes(buf[BLOCK_SIZE:]))
            sealed += 1
        self.seals += sealed

    def seal_index(self):
        """Seal the changed index blocks, bottom up; their entries go one level up."""
        for level in range(1, self.depth + 1):
            todo = sorted(j for (lv, j) in self.dirty_index if lv == level)
            for j in todo:
                self.dirty_index.discard((level, j))
                blk = self.index[(level, j)]
                loc = self.entry(level, j)[1]
                if blk == ZERO_BLOCK:
                    self.free(loc)
                    del self.index[(level, j)]
                    packed = ZERO_ENTRY
                else:
                    packed = self.seal(KIND_INDEX, level, j, blk, loc)
                self.set_entry(level, j, packed)

    # ---- size and shape ------------------------------------------------------------------------
    def resize(self, size):
        """Change the size; blocks past the end are freed, the tree's depth follows."""
        old_n, new_n = self.nblocks, blocks_for(size)
        if new_n < old_n:
            self._cut(new_n, old_n)
        self.size = size
        want = tree_depth(new_n)
        while self.depth < want:
            # the old top level becomes the first index block of a new level
            blk = bytearray(BLOCK_SIZE)
            blk[:len(self.top)] = self.top
            self.depth += 1
            self.top = bytearray()
            self.index[(self.depth, 0)] = blk
            self.dirty_index.add((self.depth, 0))
        while self.depth > want:
            # the top level has one block left: its first 96 entries become the header's
            d = self.depth
            loc = self.entry(d, 0)[1]
            blk = self.index_block(d, 0, create=False)
            self.top = bytearray(bytes(blk[:_TOP_BYTES]).rstrip(b"\0"))
            self.top.extend(bytes(-len(self.top) % ENTRY_SIZE))
            self.free(loc)
            self.index.pop((d, 0), None)
            self.dirty_index.discard((d, 0))
            self.depth = d - 1

    def _cut(self, new_n, old_n):
        """Free and zero every entry past new_n data blocks, at every level."""
        for level in range(self.depth + 1):
            lo, hi = level_count(new_n, level), level_count(old_n, level)
            if lo >= hi:
                continue
            if level == self.depth:
                top = self.top
                for i in range(lo, min(hi, len(top) // ENTRY_SIZE)):
                    self.free(ENTRY_UNPACK_FROM(top, i * ENTRY_SIZE)[1])
                del top[lo * ENTRY_SIZE:]
            else:
                keep = level_count(new_n, level + 1)
                parents = sorted(j for (lv, j) in self.index if lv == level + 1
                                 and lo // ENTRIES_PER_INDEX <= j < -(-hi // ENTRIES_PER_INDEX))
                for j in parents:
                    blk = self.index[(level + 1, j)]
                    s = max(lo - j * ENTRIES_PER_INDEX, 0)
                    e = min(hi - j * ENTRIES_PER_INDEX, ENTRIES_PER_INDEX)
                    for k in range(s, e):
                        self.free(ENTRY_UNPACK_FROM(blk, k * ENTRY_SIZE)[1])
                    blk[s * ENTRY_SIZE:e * ENTRY_SIZE] = bytes((e - s) * ENTRY_SIZE)
                    if j < keep:
                        self.dirty_index.add((level + 1, j))
            if level:
                for key in [k for k in self.index if k[0] == level and k[1] >= lo]:
                    del self.index[key]
                    self.dirty_index.discard(key)

    # ---- header ----------------------------------------------------------------------------------
    def header_block(self, slot):
        """The plaintext of the header as a commit writes it into `slot`."""
        in_use = self.locs.translate(_IN_USE).rfind(1) + 1 if self.locs is not None else 0
        self.total_blocks = max(slot + 1, in_use)
        top_count = level_count(self.nblocks, self.depth)
        fields = NODE_HEADER.pack(
            magic=NODE_MAGIC, version=FORMAT_VERSION, flags=WRITABLE_FLAGS, mode=self.mode,
            node_id=self.node_id, size=self.size, nblocks=self.nblocks, nlink=self.nlink,
            uid=self.uid, gid=self.gid, depth=self.depth, top_count=top_count,
            total_blocks=self.total_blocks, generation=self.seals, atime_ns=self.atime_ns,
            mtime_ns=self.mtime_ns, ctime_ns=self.ctime_ns, node_flags=self.node_flags)
        top = bytes(self.top[:top_count * ENTRY_SIZE])
        return fields + top + bytes(_TOP_BYTES - len(top))

    def seal_header(self, slot):
        """Seal the header for `slot` (never the committed one); returns (nonce, tag)."""
        assert slot != self.slot
        packed = self._seal_at(slot, self.header_block(slot),
                               POSITION_PACK(self.node_id, KIND_HEADER, 0, 0))
        nonce, _, mac = ENTRY_UNPACK_FROM(packed)
        return nonce, mac

    def load_header(self, plain, slot):
        """Take the fields of a header whose tag matched; returns a problem, or None."""
        h = NODE_HEADER.unpack(plain)
        if h["magic"] != NODE_MAGIC or h["version"] != FORMAT_VERSION:
            return "bad magic or version"
        if h["flags"] != WRITABLE_FLAGS or h["node_flags"] & ~KNOWN_NODE_FLAGS:
            return "its flags are not the writable layer's"
        if h["node_id"] != self.node_id or h["mode"] != self.mode:
            return "it does not match its inode record"
        nb, depth = h["nblocks"], h["depth"]
        if nb != blocks_for(h["size"]) or depth != tree_depth(nb) \
                or h["top_count"] != level_count(nb, depth):
            return "its size and block tree disagree"
        if h["total_blocks"] <= slot or any(plain[_RESERVED_FROM:NODE_HEADER.size]):
            return "bad block count or reserved bytes"
        end = NODE_HEADER.size + h["top_count"] * ENTRY_SIZE
        if any(plain[end:]):
            return "unused header entries are not zero"
        self.size, self.nlink, self.uid, self.gid = h["size"], h["nlink"], h["uid"], h["gid"]
        self.depth, self.total_blocks, self.seals = depth, h["total_blocks"], h["generation"]
        self.atime_ns, self.mtime_ns, self.ctime_ns = h["atime_ns"], h["mtime_ns"], h["ctime_ns"]
        self.node_flags = h["node_flags"]
        self.top = bytearray(plain[NODE_HEADER.size:end])
        self.slot = slot
        return None

    def after_commit(self, slot):
        """The commit that wrote this node's header into `slot` is on disk."""
        self.slot = slot
        if self.locs is not None:
            self.locs = bytearray(self.locs.translate(_AFTER_COMMIT))
            self.hint = FIRST_DATA_LOCATION
