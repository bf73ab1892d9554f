"""The writable layer's storage: superblock, inode table, nodes, and the commit.

A Store knows inode numbers, not names (writable.py resolves paths). It loads and
checks nodes, seals and writes their blocks, and makes the state in memory durable
with `commit`, the only place the superblock changes:

1. every changed node seals its changed blocks (copy on write: never over a block the
   last commit uses) and a new header into its free header slot; its INODE record in
   the table takes the header's nonce, tag and slot;
2. the inode table does the same with its changed blocks; its header goes into slot
   (generation + 1) mod 2;
3. every node file written since the last commit is fsynced, and the folder (one
   syncfs(2) instead when there are many);
4. the new superblock (generation + 1, fresh salt, the table's reference) is written
   under a temporary name, fsynced and renamed over `superblock`; the folder is fsynced.
   This rename is the commit point;
5. then node files of deleted nodes are unlinked, and node files longer than their
   header says are cut.

Until step 4 the old superblock and everything it reaches are untouched, so a kill
leaves the previous commit; after it, the new one. What steps 1-3 and 5 leave behind
after a kill (unreferenced node files, over-long node files, `.tmp-*` files) is
harmless and is cleaned up when the layer is opened next.
"""
import hashlib
import heapq
import hmac
import os
import stat as st_mod

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import IntegrityError
from . import keys as K
from . import writable_format as WF
from .format import kind_name
from .format import (
    BLOCK_SIZE, FORMAT_VERSION, KEY_SIZE, KIND_DATA, KIND_HEADER, KIND_SUPERBLOCK, NODE_NAME_HEX,
    NODE_REF, POSITION_PACK, SUPERBLOCK, SUPERBLOCK_AAD_END, SUPERBLOCK_FILE, SUPERBLOCK_MAGIC,
    TMP_PREFIX, ZERO_NODE_ID, ZERO_NONCE, blocks_for, position,
)
from .seal import seal, unseal
from .writable_blocks import BlockIO
from .writable_format import INODE, INODE_SIZE, ROOT_INO, TABLE_MODE
from .writable_node import RESERVED, Node

CREATING = TMP_PREFIX + "creating"   # present while a new layer is being made
_HEX = frozenset("0123456789abcdef")
_FILE_TYPES = (st_mod.S_IFREG, st_mod.S_IFDIR, st_mod.S_IFLNK)

# Nonces come from a pool of os.urandom bytes per store. A forked child must not draw
# the nonces its parent will: every fork starts a new epoch, which empties the pools.
_fork = [0]
os.register_at_fork(after_in_child=lambda: _fork.__setitem__(0, _fork[0] + 1))
_POOL = 12 * 4096


class Store(BlockIO):
    def __init__(self, disk, key, name, create, cache_blocks):
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
            raise ValueError("the writable layer's key must be 16 bytes")
        self.key = bytes(key)
        self.name = name
        self.disk = disk
        self.nodes = {}                 # ino -> Node, loaded or created
        self.records = bytearray()      # the inode table's data
        self.free_inos = []             # heap of free inode numbers below the table's end
        self.dirty_nodes = set()        # nodes whose header must be written at commit
        self.dirty_records = set()      # blocks of the table that changed
        self.dead = []                  # node files to delete after the next commit
        self.unsynced = set()           # node files written since their last fsync
        self.generation = 0
        self.path_of = lambda ino: None  # set by the file system: names in messages
        self.table = None
        self._pool, self._pool_pos, self._pool_epoch = b"", _POOL, -1
        self.init_blocks(cache_blocks)
        if self.disk.exists(SUPERBLOCK_FILE):
            self._open()
        elif create and (self.disk.exists(CREATING) or not self._node_files()):
            self._create()
        else:
            self.fail("the superblock is missing (the layer was never created, or it was deleted)")

    # ---- messages -----------------------------------------------------------------------------
    def fail(self, msg):
        raise IntegrityError(f"{self.name}: {msg}")

    def describe(self, node):
        if node.ino is None:
            return "the inode table"
        path = self.path_of(node.ino)
        shown = os.fsdecode(path) if path is not None else f"(inode {node.ino})"
        if not shown.isprintable():
            shown = shown.encode("unicode_escape", "backslashreplace").decode()
        return f"{kind_name(node.mode)} {shown}"

    def malformed(self, node, problem):
        self.fail(f"{self.describe(node)} is malformed: {problem}")

    # ---- keys and nonces ------------------------------------------------------------------------
    def nonce(self):
        """A fresh random 96-bit nonce."""
        p = self._pool_pos
        if p + 12 > _POOL or self._pool_epoch != _fork[0]:
            self._pool, self._pool_epoch, p = os.urandom(_POOL), _fork[0], 0
        self._pool_pos = p + 12
        return self._pool[p:p + 12]

    def node_key(self, node_id):
        """A fresh key for a node: derived from the layer key, its id and new randomness."""
        msg = b"SEFS writable node key\0" + node_id + os.urandom(16)
        return hmac.new(self.key, msg, hashlib.sha256).digest()[:KEY_SIZE]

    # ---- opening ----------------------------------------------------------------------------------
    def _node_files(self):
        return [n for n in self.disk.names() if len(n) == NODE_NAME_HEX and set(n) <= _HEX]

    def _create(self):
        self.disk.replace_file(CREATING, b"")
        for n in self._node_files():            # leftovers of a creation that was cut short
            self.disk.unlink(n)
        nid = os.urandom(16)
        self.table = Node(self, None, nid, self.node_key(nid), TABLE_MODE)
        self.table.locs = bytearray([RESERVED, RESERVED])
        self.records = bytearray(INODE_SIZE)     # inode 0 is never used
        root = self.new_node(st_mod.S_IFDIR | 0o755)
        assert root.ino == ROOT_INO
        root.nlink, root.entries, root.content = 2, {}, b""
        self.commit()
        self.disk.unlink(CREATING)

    def _open(self):
        try:
            sb = self.disk.read_small(SUPERBLOCK_FILE, SUPERBLOCK.size + 1)
        except OSError as e:
            self.fail(f"cannot read the superblock ({e.strerror})")
        if len(sb) != SUPERBLOCK.size:
            self.fail("the superblock has the wrong size")
        f = SUPERBLOCK.unpack(sb)
        if f["magic"] != SUPERBLOCK_MAGIC or f["version"] != FORMAT_VERSION \
                or f["block_size"] != BLOCK_SIZE:
            self.fail("is not a SEFS writable layer (bad superblock magic, version or block size)")
        if f["flags"] != WF.WRITABLE_FLAGS:
            self.fail("is not a SEFS writable layer (its superblock flags are "
                      f"{f['flags']:#x}, {WF.WRITABLE_FLAGS:#x} expected)")
        if K.key_check(self.key) != f["key_check"]:
            self.fail("the layer key does not match this layer (wrong key, or the layer "
                      "of another mount, enclave or signer?)")
        ref = unseal(K.superblock_key(self.key, f["salt"]), ZERO_NONCE,
                     position(ZERO_NODE_ID, KIND_SUPERBLOCK), f["root"], f["root_mac"],
                     sb[:SUPERBLOCK_AAD_END])
        if ref is None:
            self.fail("the superblock fails its MAC")
        ref = NODE_REF.unpack(ref)
        if ref["mode"] != TABLE_MODE or ref["node_name"] != ref["node_id"]:
            self.fail("the superblock is malformed: it does not name an inode table")
        self.generation = f["generation"]
        self.table = self._load_node(None, ref, self.generation & 1)
        data = self.read_content(self.table)
        self.table.content = None
        if len(data) % INODE_SIZE or len(data) < 2 * INODE_SIZE:
            self.malformed(self.table, f"its size {len(data)} is not a whole number of records")
        self.records = bytearray(data)
        self._check_records()
        self._collect_garbage()

    def _check_records(self):
        recs = self.records
        for ino in range(len(recs) // INODE_SIZE):
            raw = recs[ino * INODE_SIZE:(ino + 1) * INODE_SIZE]
            r = INODE.unpack(raw)
            if r["mode"] == 0:
                if any(raw):
                    self.malformed(self.table, f"free inode {ino} is not all zeros")
                if ino > ROOT_INO:
                    self.free_inos.append(ino)
                continue
            if ino == 0 or r["node_name"] != r["node_id"] or r["slot"] > 1 \
                    or st_mod.S_IFMT(r["mode"]) not in _FILE_TYPES or any(raw[84:]):
                self.malformed(self.table, f"inode {ino} has an invalid record")
        root = self.record(ROOT_INO)
        if root is None or not st_mod.S_ISDIR(root["mode"]):
            self.malformed(self.table, "the root directory (inode 1) is missing")
        heapq.heapify(self.free_inos)

    def _collect_garbage(self):
        """Delete what an interrupted commit left: files no record names, `.tmp-*`."""
        live = {self.table.name}
        for ino in range(len(self.records) // INODE_SIZE):
            r = self.record(ino)
            if r is not None:
                live.add(r["node_id"].hex())
        for n in self.disk.names():
            if n.startswith(TMP_PREFIX) or (len(n) == NODE_NAME_HEX and set(n) <= _HEX
                                            and n not in live):
                self.disk.unlink(n)

    # ---- records and nodes ----------------------------------------------------------------------
    def record(self, ino):
        """The INODE record of `ino` as a dict, or None if the number is free."""
        off = ino * INODE_SIZE
        if ino <= 0 or off >= len(self.records):
            return None
        r = INODE.unpack(self.records, off)
        return r if r["mode"] else None

    def node_id_of(self, ino):
        off = ino * INODE_SIZE + INODE.offsets["node_id"]
        return bytes(self.records[off:off + 16])

    def _set_record(self, ino, raw):
        off = ino * INODE_SIZE
        self.records[off:off + INODE_SIZE] = raw
        self.dirty_records.add(off // BLOCK_SIZE)

    def node(self, ino):
        """The node of inode `ino`, loaded and checked on first use; ENOENT if free."""
        node = self.nodes.get(ino)
        if node is None:
            rec = self.record(ino)
            if rec is None:
                raise FileNotFoundError(2, "No such file or directory (stale inode)", ino)
            node = self._load_node(ino, rec, rec["slot"])
            self.nodes[ino] = node
        return node

    def _load_node(self, ino, rec, slot):
        node = Node(self, ino, rec["node_id"], rec["key"], rec["mode"])
        try:
            raw = self.disk.pread(node.name, BLOCK_SIZE, slot * BLOCK_SIZE)
            size = self.disk.size(node.name)
        except FileNotFoundError:
            self.fail(f"node file {node.name} of {self.describe(node)} is missing")
        plain = None
        if len(raw) == BLOCK_SIZE:
            try:
                plain = node.aead.decrypt(rec["nonce"], raw + rec["mac"],
                                          POSITION_PACK(node.node_id, KIND_HEADER, 0, 0))
            except InvalidTag:
                pass
        if plain is None:
            self.fail(f"{self.describe(node)} fails its MAC")
        problem = node.load_header(plain, slot)
        if problem:
            self.malformed(node, problem)
        if size < node.total_blocks * BLOCK_SIZE:
            self.fail(f"node file {node.name} of {self.describe(node)} has the wrong size "
                      f"({size} bytes, at least {node.total_blocks * BLOCK_SIZE} expected)")
        node.file_blocks, node.file_exists = size // BLOCK_SIZE, True
        return node

    def new_node(self, mode):
        ino = heapq.heappop(self.free_inos) if self.free_inos else len(self.records) // INODE_SIZE
        if ino * INODE_SIZE >= len(self.records):
            self.records.extend(bytes(INODE_SIZE))
        nid = os.urandom(16)
        node = Node(self, ino, nid, self.node_key(nid), mode)
        node.locs = bytearray([RESERVED, RESERVED])
        self._set_record(ino, INODE.pack(node_name=nid, node_id=nid, key=node.key, mode=mode))
        self.nodes[ino] = node
        self.dirty_nodes.add(node)
        return node

    def touch(self, node):
        """`node` is about to change: it will be written at the next commit."""
        if node.locs is None:
            node.load_tree()
        if node.nlink > 0:
            self.dirty_nodes.add(node)

    def unlinked(self, node):
        """The last name of `node` is gone: it leaves the table; its file goes when the
        last open reference does (release)."""
        self._set_record(node.ino, bytes(INODE_SIZE))
        self.dirty_nodes.discard(node)
        if node.refs == 0:
            self.reclaim(node)

    def reclaim(self, node):
        self.staged_nodes.discard(node)
        for i in node.cached:
            self.cache.pop((node.ino, i), None)
        node.cached.clear()
        node.dirty.clear()
        node.pending.clear()
        del self.nodes[node.ino]
        heapq.heappush(self.free_inos, node.ino)
        self.unsynced.discard(node.name)
        if node.file_exists:
            self.disk.forget(node.name)
            self.dead.append(node.name)

    def put_content(self, node, new, changed=None):
        """Make the sealed data of an in-memory node `new`: only blocks that differ
        (or, given `changed`, only those block numbers) are sealed again."""
        old = node.content or b""
        node.resize(len(new))
        n = blocks_for(len(new))
        for i in (range(n) if changed is None else sorted(b for b in changed if b < n)):
            blk = bytes(new[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE]).ljust(BLOCK_SIZE, b"\0")
            if changed is None and blk == old[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE].ljust(BLOCK_SIZE, b"\0"):
                continue
            node.put_block(i, blk)
        node.content = bytes(new) if node is not self.table else None

    def _rekey(self, node):
        """Seal every block of a node again under a new key (its old key has sealed
        enough blocks that random nonces must stop). Copy on write as always: the
        committed tree keeps the old key until the commit."""
        old = node.aead
        node.key = self.node_key(node.node_id)
        node.aead = AESGCM(node.key)
        node.seals = 0
        for level, i, nonce, loc, mac in list(node.walk()):
            if level == 0 and i not in node.dirty:
                node.put_block(i, self.read_block(node, KIND_DATA, 0, i, nonce, loc, mac, aead=old))
        node.dirty_index.update(node.index)

    # ---- the commit -----------------------------------------------------------------------------
    def _flush(self, node):
        if node.seals >= WF.REKEY_AFTER:
            self._rekey(node)
        if node.entries is not None:
            self.put_content(node, WF.pack_dir(node.entries, self.node_id_of))
        elif node.target is not None and node.target != node.content:
            self.put_content(node, node.target)
        if node.dirty:
            node.put_blocks([(i, self.cache[(node.ino, i)]) for i in sorted(node.dirty)])
            node.dirty.clear()
        node.seal_index()

    def commit(self):
        """Make everything durable (the steps in the module's docstring); True if there
        was anything to write."""
        if not (self.dirty_nodes or self.dirty_records or self.dead):
            return False
        gen = self.generation + 1
        written = []
        for node in sorted(self.dirty_nodes, key=lambda n: n.ino):
            self._flush(node)
            slot = 0 if node.slot is None else 1 - node.slot
            nonce, mac = node.seal_header(slot)
            self._set_record(node.ino, INODE.pack(
                node_name=node.node_id, node_id=node.node_id, mac=mac, key=node.key,
                nonce=nonce, mode=node.mode, slot=slot))
            written.append((node, slot))
        table = self.table
        if table.locs is None:
            table.load_tree()
        if table.seals >= WF.REKEY_AFTER:
            self._rekey(table)
        self.put_content(table, self.records, self.dirty_records)
        table.seal_index()
        tslot = gen & 1
        nonce, mac = table.seal_header(tslot)
        self.write_staged()
        self.disk.sync_files(self.unsynced)      # and the folder: new node files
        ref = NODE_REF.pack(node_name=table.node_id, node_id=table.node_id, mac=mac,
                            key=table.key, nonce=nonce, mode=TABLE_MODE)
        self.disk.replace_file(SUPERBLOCK_FILE, self._superblock(gen, ref))
        # ---- committed: the new state is the one on disk
        self.generation = gen
        self.unsynced.clear()
        self.dirty_nodes.clear()
        self.dirty_records.clear()
        for node, slot in written + [(table, tslot)]:
            node.after_commit(slot)
        dead, self.dead = self.dead, []
        for name in dead:
            self.disk.unlink(name)
        for node, _ in written + [(table, tslot)]:
            if node.file_blocks > node.total_blocks:
                self.disk.truncate(node.name, node.total_blocks * BLOCK_SIZE)
                node.file_blocks = node.total_blocks
        return True

    def _superblock(self, gen, ref):
        salt = os.urandom(16)       # a new superblock key per commit: the zero nonce is safe
        head = SUPERBLOCK.pack(magic=SUPERBLOCK_MAGIC, version=FORMAT_VERSION,
                               flags=WF.WRITABLE_FLAGS, block_size=BLOCK_SIZE, generation=gen,
                               key_check=K.key_check(self.key), salt=salt)[:SUPERBLOCK_AAD_END]
        stored, tag = seal(K.superblock_key(self.key, salt), ZERO_NONCE,
                           position(ZERO_NODE_ID, KIND_SUPERBLOCK), ref, head)
        return head + stored + tag

    def close(self):
        self.disk.close()
