"""The writable layer (run/mount/__ROOT) as a file system the LibOS calls.

    fs = open_writable(dest, key)          # key: the 16-byte sealing key of the layer
    ino = fs.create("/data/log", 0o644)
    fs.write(ino, 0, b"hello")             # by inode: survives rename and unlink
    fs.fsync(ino)                          # durable once this returns
    fs.close()

Paths are absolute POSIX paths inside the layer; nothing here follows symbolic links
(the VFS above resolves them), and `.` / `..` are the VFS's business too. Errors are
OSError with the errno the LibOS returns (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY,
EINVAL, ENAMETOOLONG, EPERM, EBUSY), or IntegrityError, one line naming the layer and
what failed, when something on disk was changed, swapped, lost, or the key is wrong.

The format and its crash safety are in docs/formats.md, section 9. writable_paths.py
resolves paths and keeps directory entries; writable_store.py does the storage and the
commit, writable_blocks.py block I/O and the cache, writable_node.py a node's block
tree, writable_disk.py every change to the folder. The unionfs at
`/` uses whiteouts (a name that hides the lower layer's entry) and opaque directories
(that hide the whole lower directory); both are stored in the format.
"""
import errno
import functools
import os
import stat as st_mod
import threading
import time
from dataclasses import dataclass

from .format import BLOCK_SIZE, DIRENT_FIXED, KIND_DATA
from .writable_format import NODE_OPAQUE, ROOT_INO, WHITEOUT_TYPE
from .writable_paths import Namespace, _err
from .writable_disk import Disk
from .writable_store import Store

DEFAULT_CACHE_BYTES = 32 << 20
SYMLINK_MAX = 4095


@dataclass(frozen=True)
class WStat:
    mode: int
    size: int
    nlink: int
    ino: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    blocks: int         # 512-byte units, as st_blocks

    st_mode = property(lambda s: s.mode)
    st_size = property(lambda s: s.size)
    st_nlink = property(lambda s: s.nlink)
    st_ino = property(lambda s: s.ino)


def _locked(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kw):
        with self._lock:
            if self._store is None:
                raise ValueError(f"{self.name}: the layer is closed")
            return fn(self, *args, **kw)
    return wrapper


class WritableLayer(Namespace):
    def __init__(self, store):
        self._store = store
        self.name = store.name
        self._lock = threading.RLock()
        self._searching = False
        store.path_of = self._path_of

    # ---- the namespace ------------------------------------------------------------------------
    @_locked
    def lstat(self, x):
        n = self._node(x)
        size = n.size
        if n.entries is not None:       # a directory: the size its records will have
            size = sum((DIRENT_FIXED + len(name) + 7) & ~7 for name in n.entries)
        return WStat(mode=n.mode, size=size, nlink=n.nlink, ino=n.ino, uid=n.uid, gid=n.gid,
                     atime_ns=n.atime_ns, mtime_ns=n.mtime_ns, ctime_ns=n.ctime_ns,
                     blocks=-(-size // BLOCK_SIZE) * (BLOCK_SIZE // 512))

    stat = lstat

    @_locked
    def exists(self, path):
        try:
            self._node(path)
        except OSError:
            return False
        return True

    @_locked
    def listdir(self, x):
        d = self._node(x)
        if not st_mod.S_ISDIR(d.mode):
            raise _err(errno.ENOTDIR, x)
        return [os.fsdecode(n) for n, (ino, _) in sorted(self._entries(d).items()) if ino]

    @_locked
    def mkdir(self, path, mode=0o755):
        return self._new(path, st_mod.S_IFDIR | (mode & 0o7777)).ino

    @_locked
    def create(self, path, mode=0o644):
        return self._new(path, st_mod.S_IFREG | (mode & 0o7777)).ino

    @_locked
    def symlink(self, target, path):
        t = os.fsencode(target)
        if not t or b"\0" in t:
            raise _err(errno.EINVAL if t else errno.ENOENT, path)
        if len(t) > SYMLINK_MAX:
            raise _err(errno.ENAMETOOLONG, path)
        return self._new(path, st_mod.S_IFLNK | 0o777, t).ino

    @_locked
    def readlink(self, x):
        n = self._node(x)
        if not st_mod.S_ISLNK(n.mode):
            raise _err(errno.EINVAL, x)
        if n.target is None:
            n.target = self._store.read_content(n)
        return os.fsdecode(n.target)

    @_locked
    def link(self, existing, new):
        node = self._node(existing)
        if st_mod.S_ISDIR(node.mode):
            raise _err(errno.EPERM, existing)
        if node.nlink == 0:                 # unlinked, only open: its record is gone
            raise _err(errno.ENOENT, existing if not isinstance(existing, int) else None)
        d, name = self._parent(new)
        self._free_name(d, name, new)
        now = time.time_ns()
        node.nlink += 1
        node.ctime_ns = now
        self._store.touch(node)
        self._set_entry(d, name, node, now)

    @_locked
    def unlink(self, path):
        d, name = self._parent(path)
        ino = self._lookup(d, name)
        if ino is None:
            raise _err(errno.ENOENT, path)
        node = self._store.node(ino)
        if st_mod.S_ISDIR(node.mode):
            raise _err(errno.EISDIR, path)
        now = time.time_ns()
        self._del_entry(d, name, now)
        self._drop_link(node, now)

    @_locked
    def rmdir(self, path):
        d, name = self._parent(path)
        ino = self._lookup(d, name)
        if ino is None:
            raise _err(errno.ENOENT, path)
        node = self._store.node(ino)
        if not st_mod.S_ISDIR(node.mode):
            raise _err(errno.ENOTDIR, path)
        if self._has_entries(node):
            raise _err(errno.ENOTEMPTY, path)
        now = time.time_ns()
        self._del_entry(d, name, now)
        d.nlink -= 1
        node.entries = {}           # whiteouts inside go with it
        self._drop_link(node, now)

    @_locked
    def rename(self, old, new):
        op, oname = self._parent(old)
        np_, nname = self._parent(new)
        oino = self._lookup(op, oname)
        if oino is None:
            raise _err(errno.ENOENT, old)
        node = self._store.node(oino)
        is_dir = st_mod.S_ISDIR(node.mode)
        old_parts, new_parts = self._split(old), self._split(new)
        if is_dir and new_parts[:len(old_parts)] == old_parts and new_parts != old_parts:
            raise _err(errno.EINVAL, new)           # into its own subtree
        nino = self._lookup(np_, nname)
        if nino == oino:
            return                                  # the same file (or a hard link of it)
        now = time.time_ns()
        if nino is not None:
            target = self._store.node(nino)
            if is_dir:
                if not st_mod.S_ISDIR(target.mode):
                    raise _err(errno.ENOTDIR, new)
                if self._has_entries(target):
                    raise _err(errno.ENOTEMPTY, new)
            elif st_mod.S_ISDIR(target.mode):
                raise _err(errno.EISDIR, new)
            self._del_entry(np_, nname, now)
            if st_mod.S_ISDIR(target.mode):
                np_.nlink -= 1
                target.entries = {}
            self._drop_link(target, now)
        self._del_entry(op, oname, now)
        self._set_entry(np_, nname, node, now)
        if is_dir and op is not np_:
            op.nlink -= 1
            np_.nlink += 1
        node.ctime_ns = now
        self._store.touch(node)

    # ---- attributes -----------------------------------------------------------------------------
    @_locked
    def chmod(self, x, mode):
        n = self._node(x)
        self._store.touch(n)
        n.mode = st_mod.S_IFMT(n.mode) | (mode & 0o7777)
        n.ctime_ns = time.time_ns()

    @_locked
    def utime(self, x, atime_ns=None, mtime_ns=None):
        """Set the times (None: leave that one); ctime becomes now, as utimensat does."""
        n = self._node(x)
        self._store.touch(n)
        if atime_ns is not None:
            n.atime_ns = int(atime_ns)
        if mtime_ns is not None:
            n.mtime_ns = int(mtime_ns)
        n.ctime_ns = time.time_ns()

    # ---- unionfs markers ---------------------------------------------------------------------------
    @_locked
    def whiteout(self, path):
        """Hide the lower layer's `path`: EEXIST if this layer has a real entry there."""
        d, name = self._parent(path)
        self._free_name(d, name, path)
        self._store.touch(d)
        self._entries(d)[name] = (0, WHITEOUT_TYPE)
        d.mtime_ns = d.ctime_ns = time.time_ns()

    @_locked
    def is_whiteout(self, path):
        try:
            d, name = self._parent(path)
        except OSError:
            return False
        return self._entries(d).get(name) == (0, WHITEOUT_TYPE)

    @_locked
    def remove_whiteout(self, path):
        d, name = self._parent(path)
        if self._entries(d).get(name) != (0, WHITEOUT_TYPE):
            raise _err(errno.ENOENT, path)
        self._del_entry(d, name, time.time_ns())

    @_locked
    def list_whiteouts(self, x):
        d = self._node(x)
        if not st_mod.S_ISDIR(d.mode):
            raise _err(errno.ENOTDIR, x)
        return [os.fsdecode(n) for n, (ino, _) in sorted(self._entries(d).items()) if not ino]

    @_locked
    def set_opaque(self, x, opaque=True):
        d = self._node(x)
        if not st_mod.S_ISDIR(d.mode):
            raise _err(errno.ENOTDIR, x)
        self._store.touch(d)
        d.node_flags = (d.node_flags | NODE_OPAQUE) if opaque else (d.node_flags & ~NODE_OPAQUE)

    @_locked
    def is_opaque(self, x):
        d = self._node(x)
        return st_mod.S_ISDIR(d.mode) and bool(d.node_flags & NODE_OPAQUE)

    # ---- file data ------------------------------------------------------------------------------
    def _file(self, x):
        n = self._store.nodes.get(x) if isinstance(x, int) else None
        if n is None:
            n = self._node(x)
        if not st_mod.S_ISREG(n.mode):
            raise _err(errno.EISDIR if st_mod.S_ISDIR(n.mode) else errno.EINVAL,
                       x if not isinstance(x, int) else None)
        return n

    def read(self, x, offset, length):
        with self._lock:                # not @_locked: this is the hot path
            s = self._store
            if s is None:
                raise ValueError(f"{self.name}: the layer is closed")
            if offset < 0 or length < 0:
                raise _err(errno.EINVAL)
            n = self._file(x)
            end = min(n.size, offset + length)
            if offset >= end:
                return b""
            first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
            base = first * BLOCK_SIZE
            if first == last:
                b = s.cache.get((n.ino, first))
                if b is None:
                    b = s.file_block(n, first)
                else:
                    s.cache.move_to_end((n.ino, first))
                if end - offset == BLOCK_SIZE:
                    return bytes(b)
                return bytes(memoryview(b)[offset - base:end - base])
            parts = []
            for i in range(first, last + 1):
                b = s.file_block(n, i)
                lo = max(offset - i * BLOCK_SIZE, 0)
                hi = min(end - i * BLOCK_SIZE, BLOCK_SIZE)
                parts.append(bytes(memoryview(b)[lo:hi]))    # copied: the next call may evict b
            return b"".join(parts)

    def write(self, x, offset, data):
        with self._lock:                # not @_locked: this is the hot path
            s = self._store
            if s is None:
                raise ValueError(f"{self.name}: the layer is closed")
            if offset < 0:
                raise _err(errno.EINVAL)
            n = self._file(x)
            mv = memoryview(data).cast("B")
            size = len(mv)
            if size == 0:
                return 0
            if n.locs is None or n not in s.dirty_nodes:
                s.touch(n)
            end = offset + size
            if end > n.size:
                if -(-end // BLOCK_SIZE) == -(-n.size // BLOCK_SIZE):
                    n.size = end
                else:
                    n.resize(end)       # new blocks in between are holes: they read as zeros
            cache, ino, dirty, cached = s.cache, n.ino, n.dirty, n.cached
            i, bo, pos = offset // BLOCK_SIZE, offset % BLOCK_SIZE, 0
            while pos < size:
                take = BLOCK_SIZE - bo if size - pos > BLOCK_SIZE - bo else size - pos
                key = (ino, i)
                if take == BLOCK_SIZE:  # a whole block: nothing to read
                    buf = cache.get(key)
                    if buf is None:
                        buf = cache[key] = s.spare.pop() if s.spare else bytearray(BLOCK_SIZE)
                        cached.add(i)
                    else:
                        cache.move_to_end(key)
                    buf[:] = mv[pos:pos + BLOCK_SIZE]
                else:
                    s.file_block(n, i)[bo:bo + take] = mv[pos:pos + take]
                dirty.add(i)
                pos += take
                i += 1
                bo = 0
            n.mtime_ns = n.ctime_ns = time.time_ns()
            if len(cache) > s.cache_limit:
                s.evict()
            return size

    @_locked
    def truncate(self, x, size):
        if size < 0:
            raise _err(errno.EINVAL)
        n = self._file(x)
        s = self._store
        s.touch(n)
        if size < n.size:
            keep = -(-size // BLOCK_SIZE)
            s.drop_cached(n, keep)
            if size % BLOCK_SIZE:
                # the tail of the new last block must read as zeros if the file grows again
                b = s.file_block(n, keep - 1)
                b[size % BLOCK_SIZE:] = bytes(BLOCK_SIZE - size % BLOCK_SIZE)
                n.dirty.add(keep - 1)
        n.resize(size)
        n.mtime_ns = n.ctime_ns = time.time_ns()

    # ---- open files ------------------------------------------------------------------------------
    @_locked
    def open_ref(self, x):
        """Count an open file: its node stays (readable, writable) after its last name
        is unlinked, until release(). Returns the inode number."""
        n = self._node(x)
        n.refs += 1
        return n.ino

    @_locked
    def release(self, ino):
        n = self._store.nodes.get(ino)
        if n is None or n.refs <= 0:
            raise _err(errno.EBADF)
        n.refs -= 1
        if n.refs == 0 and n.nlink == 0:
            self._store.reclaim(n)

    # ---- durability -------------------------------------------------------------------------------
    @_locked
    def fsync(self, x=None):
        """Everything written so far is on disk when this returns (one commit covers
        the whole layer: its root covers every node)."""
        if x is not None:
            self._node(x)
        self._store.commit()

    @_locked
    def sync(self):
        self._store.commit()

    def close(self):
        with self._lock:
            if self._store is None:
                return
            try:
                self._store.commit()
            finally:
                self._store.close()
                self._store = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- checking ---------------------------------------------------------------------------------
    @_locked
    def verify_all(self):
        """Read and check every node and block reachable from the root, and the link
        counts; returns {"files", "dirs", "symlinks", "bytes"}."""
        s = self._store
        counts = {"files": 0, "dirs": 0, "symlinks": 0, "bytes": 0}
        links, seen, todo = {}, set(), [s.node(ROOT_INO)]
        while todo:
            d = todo.pop()
            subdirs = 0
            for name, (ino, ftype) in sorted(self._entries(d).items()):
                if not ino:
                    continue
                links[ino] = links.get(ino, 0) + 1
                n = s.node(ino)
                if ino in seen:
                    continue
                seen.add(ino)
                if n.locs is None and n.slot is not None:
                    n.load_tree()           # reads and checks every index block
                if ftype == st_mod.S_IFDIR:
                    subdirs += 1
                    todo.append(n)
                    counts["dirs"] += 1
                elif ftype == st_mod.S_IFLNK:
                    self.readlink(ino)
                    counts["symlinks"] += 1
                else:
                    for level, i, nonce, loc, mac in n.walk():
                        if level == 0:
                            s.read_block(n, KIND_DATA, 0, i, nonce, loc, mac)
                    counts["files"] += 1
                    counts["bytes"] += n.size
            if d.nlink != 2 + subdirs:
                s.malformed(d, f"its link count {d.nlink} is not {2 + subdirs}")
        for ino, count in links.items():
            n = s.node(ino)
            if not st_mod.S_ISDIR(n.mode) and n.nlink != count:
                s.malformed(n, f"its link count {n.nlink} is not {count}")
        return counts


def open_writable(dest, key, name="run/mount/__ROOT", create=True, cache_bytes=DEFAULT_CACHE_BYTES,
                  base=None):
    """The writable layer in folder `dest`, sealed with the 16-byte `key`.

    A missing or empty folder becomes an empty layer (create=True). Opening checks the
    superblock and the inode table, and removes what an interrupted commit left.
    name: how errors call the layer. cache_bytes: bound of the cache of file blocks.
    base: the folder `dest` is relative to (the instance): no component of `dest` below
    it may be a symbolic link (fsutil.open_dir), nor is any link in the layer followed."""
    from .. import fsutil
    try:
        dfd = fsutil.open_dir(dest, base=base, create=create)
    except FileNotFoundError:
        raise _err(errno.ENOENT, os.fsdecode(dest)) from None
    disk = Disk(dfd, name)
    try:
        store = Store(disk, key, name, create, cache_bytes // BLOCK_SIZE)
    except BaseException:
        disk.close()
        raise
    return WritableLayer(store)
