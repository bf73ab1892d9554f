"""Reads a SEFS image and checks every byte it hands out against the root MAC.

Nothing is trusted before its tag matches: the superblock against the root MAC, a node
header against its directory entry, an index or data block against its index entry.
What has been checked is kept in memory (headers and directory listings), never read
again from disk, so that a file changed after the check cannot slip in later. File
data is checked block by block on every read and not kept.

Paths are absolute inside the image ("/bin/ls"); symbolic links are never followed
(stat is lstat): resolving them is the LibOS's business. On the host side neither: the
folder is opened once without following a link (fsutil.open_dir) and its files are
opened relative to it with O_NOFOLLOW (a planted link or FIFO is refused, not followed).
"""
import errno
import os
import stat as st_mod
from dataclasses import dataclass

from .. import fsutil
from ..errors import IntegrityError
from . import keys as K
from .format import kind_name
from .format import (
    BLOCK_SIZE, ENTRIES_PER_INDEX, ENTRY_SIZE, ENTRY_UNPACK_FROM, FLAG_ENCRYPTED,
    FORMAT_VERSION, HEADER_ENTRIES_OFFSET, KIND_DATA, KIND_HEADER, KIND_INDEX,
    KIND_SUPERBLOCK, KNOWN_FLAGS, MAC_SIZE, NODE_HEADER, NODE_MAGIC, NODE_REF,
    POSITION_PACK, SUPERBLOCK, SUPERBLOCK_AAD_END, SUPERBLOCK_FILE, SUPERBLOCK_MAGIC,
    ZERO_NODE_ID, ZERO_NONCE, blocks_for, parse_dirents, position, tree_depth,
)
from .seal import Opener, unseal

_RUN = 256      # data blocks fetched per pread when a whole file is checked


@dataclass(frozen=True)
class Stat:
    mode: int           # st_mode: type bits and permission bits
    size: int
    nlink: int
    uid: int
    gid: int
    mtime_ns: int
    ino: int            # from the node id: stable for a path within one image
    node: str           # node file name

    @property
    def is_dir(self):
        return st_mod.S_ISDIR(self.mode)

    @property
    def is_file(self):
        return st_mod.S_ISREG(self.mode)

    @property
    def is_symlink(self):
        return st_mod.S_ISLNK(self.mode)


@dataclass
class VerifyReport:
    nodes: dict         # node file name -> image path
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0      # data bytes of regular files


class _Node:
    """A node whose header has been checked."""
    __slots__ = ("path", "ref", "hdr", "top", "opener", "file")

    def __init__(self, path, ref, hdr, top, opener, file):
        self.path, self.ref, self.hdr, self.top, self.opener, self.file = path, ref, hdr, top, opener, file


class Image:
    def __init__(self, dest, root_mac, key=None, name=None, base=None):
        self.name = name if name is not None else os.fsdecode(dest)
        self.dfd = None
        if isinstance(root_mac, str):
            root_mac = K.parse_mac(root_mac)
        root_mac = bytes(root_mac)
        if len(root_mac) != MAC_SIZE:
            raise ValueError("the root MAC must be 16 bytes")
        self.root_mac = root_mac
        key = K.check_key(key)
        self._headers = {}      # image path -> _Node
        self._dirs = {}         # image path -> {name: NODE_REF dict}, names in order
        try:
            self.dfd = fsutil.open_dir(dest, base=base)
        except fsutil.LinkRefused as e:
            self._fail(f"{e.shown} is a symbolic link; links are not followed here")
        except FileNotFoundError:
            self._fail("the superblock is missing (the image was never built, or its build "
                       "was interrupted)")
        except OSError as e:
            self._fail(f"cannot open the folder ({e.strerror})")
        self._root_ref = self._open_superblock(key)

    def close(self):
        if self.dfd is not None:
            os.close(self.dfd)
            self.dfd = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _open_file(self, name):
        """A descriptor of a file of the folder: no link followed, no FIFO waited for."""
        return fsutil.open_file(self.dfd, name, fsutil.READ_FLAGS)

    # ---- errors ---------------------------------------------------------------------------
    def _fail(self, msg):
        raise IntegrityError(f"{self.name}: {msg}")

    @staticmethod
    def _show(path):
        """A path for a one-line message: control characters and undecodable bytes escaped."""
        s = os.fsdecode(path)
        return s if s.isprintable() else s.encode("unicode_escape", "backslashreplace").decode()

    # ---- superblock -------------------------------------------------------------------------
    def _open_superblock(self, key):
        sb, problem = None, None
        try:
            sb = fsutil.read_small(self.dfd, SUPERBLOCK_FILE, SUPERBLOCK.size + 1)
        except FileNotFoundError:
            problem = "the superblock is missing (the image was never built, or its build was interrupted)"
        except OSError as e:
            problem = f"cannot read the superblock ({e.strerror})"
        if problem:
            self._fail(problem)
        if len(sb) != SUPERBLOCK.size:
            self._fail("root node does not match the root MAC (the superblock has the wrong size)")
        f = SUPERBLOCK.unpack(sb)
        if f["magic"] != SUPERBLOCK_MAGIC:
            self._fail("is not a SEFS image (bad superblock magic)")
        if f["version"] != FORMAT_VERSION or f["block_size"] != BLOCK_SIZE or f["flags"] & ~KNOWN_FLAGS:
            self._fail("root node does not match the root MAC (unknown version, block size or flags)")
        self.flags = f["flags"]
        self.encrypted = bool(self.flags & FLAG_ENCRYPTED)
        if self.encrypted:
            if key is None:
                self._fail("the image is encrypted: an image key is needed to read it")
            if K.key_check(key) != f["key_check"]:
                self._fail("the image key does not match this image (wrong key?)")
            sb_key = K.superblock_key(key, f["salt"])
        else:
            if key is not None:
                self._fail("the image is not encrypted, but an image key was given")
            sb_key = None
        if f["root_mac"] != self.root_mac:
            self._fail("root node does not match the root MAC")
        ref = unseal(sb_key, ZERO_NONCE, position(ZERO_NODE_ID, KIND_SUPERBLOCK),
                     sb[SUPERBLOCK_AAD_END:SUPERBLOCK.offsets["root_mac"]], self.root_mac,
                     sb[:SUPERBLOCK_AAD_END])
        if ref is None:
            self._fail("root node does not match the root MAC")
        ref = NODE_REF.unpack(ref)
        if not st_mod.S_ISDIR(ref["mode"]):
            self._fail("root node does not match the root MAC (the root is not a directory)")
        return ref

    # ---- nodes ------------------------------------------------------------------------------
    def _node(self, path, ref):
        """The checked header of the node at `path`, which `ref` (already checked) names."""
        node = self._headers.get(path)
        if node is not None:
            return node
        shown, kind = self._show(path), kind_name(ref["mode"])
        fname = ref["node_name"].hex()
        fd, problem = None, None
        try:
            fd = self._open_file(fname)
        except FileNotFoundError:
            problem = f"node file {fname} of {kind} {shown} is missing"
        except OSError as e:
            problem = f"cannot read node file {fname} of {kind} {shown} ({e.strerror})"
        if problem:
            self._fail(problem)
        try:
            raw = os.pread(fd, BLOCK_SIZE, 0)
            file_size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        key = ref["key"] if self.encrypted else None
        opener = Opener(key)
        block = None
        if len(raw) == BLOCK_SIZE:
            block = opener.open(ref["nonce"], position(ref["node_id"], KIND_HEADER), raw, ref["mac"])
        if block is None:
            self._fail(f"{kind} {shown} fails its MAC")
        hdr = NODE_HEADER.unpack(block)
        problem = None
        if hdr["magic"] != NODE_MAGIC or hdr["version"] != FORMAT_VERSION:
            problem = "bad magic or version"
        elif hdr["flags"] != self.flags:
            problem = "its flags differ from the image's"
        elif hdr["node_id"] != ref["node_id"] or hdr["mode"] != ref["mode"]:
            problem = "it does not match its directory entry"
        elif (hdr["nblocks"] != blocks_for(hdr["size"]) or hdr["depth"] != tree_depth(hdr["nblocks"])
              or hdr["top_count"] != self._level_count(hdr["nblocks"], hdr["depth"])):
            problem = "its size and block tree disagree"
        if problem:
            self._fail(f"{kind} {shown} is malformed: {problem}")
        if file_size != hdr["total_blocks"] * BLOCK_SIZE:
            self._fail(f"node file {fname} of {kind} {shown} has the wrong size "
                       f"({file_size} bytes, {hdr['total_blocks'] * BLOCK_SIZE} expected)")
        top = [ENTRY_UNPACK_FROM(block, HEADER_ENTRIES_OFFSET + i * ENTRY_SIZE)
               for i in range(hdr["top_count"])]
        node = _Node(path, ref, hdr, top, opener, fname)
        self._headers[path] = node
        return node

    @staticmethod
    def _level_count(nblocks, level):
        for _ in range(level):
            nblocks = -(-nblocks // ENTRIES_PER_INDEX)
        return nblocks

    def _check_location(self, node, loc, what):
        if not 0 < loc < node.hdr["total_blocks"]:
            self._fail(f"{what} is malformed: location {loc} is outside its node file")

    def _open_node_file(self, node):
        """A descriptor of a node file whose header was checked earlier."""
        try:
            return self._open_file(node.file)
        except OSError as e:
            problem = (f"node file {node.ref['node_name'].hex()} of {kind_name(node.hdr['mode'])} "
                       f"{self._show(node.path)} " + ("is missing" if e.errno == errno.ENOENT
                                                      else f"cannot be read ({e.strerror})"))
        self._fail(problem)

    def _open_block(self, node, fd, entry, kind, level, index, what):
        nonce, loc, mac = entry
        self._check_location(node, loc, what)
        raw = os.pread(fd, BLOCK_SIZE, loc * BLOCK_SIZE)
        data = None
        if len(raw) == BLOCK_SIZE:
            data = node.opener.open(nonce, POSITION_PACK(node.ref["node_id"], kind, level, index), raw, mac)
        if data is None:
            self._fail(f"{what} fails its MAC")
        return data

    def _what(self, node, i):
        shown = self._show(node.path)
        if st_mod.S_ISREG(node.hdr["mode"]):
            return f"block {i} of {shown}"
        return f"block {i} of {kind_name(node.hdr['mode'])} {shown}"

    def _entries(self, node, fd, level, first, count, memo):
        """Entries [first, first+count) of the blocks at `level`, parents checked on the way."""
        depth = node.hdr["depth"]
        if level == depth:
            return node.top[first:first + count]
        out = []
        j = first // ENTRIES_PER_INDEX
        while len(out) < count:
            blk = memo.get((level + 1, j))
            if blk is None:
                (entry,) = self._entries(node, fd, level + 1, j, 1, memo)
                blk = self._open_block(node, fd, entry, KIND_INDEX, level + 1, j,
                                       f"index block {j} (level {level + 1}) of {self._show(node.path)}")
                memo[(level + 1, j)] = blk
            lo = max(first + len(out) - j * ENTRIES_PER_INDEX, 0)
            hi = min(first + count - j * ENTRIES_PER_INDEX, ENTRIES_PER_INDEX)
            out.extend(ENTRY_UNPACK_FROM(blk, k * ENTRY_SIZE) for k in range(lo, hi))
            j += 1
        return out

    def _data(self, node, first, count):
        """Data blocks [first, first+count) of a node, each checked, joined."""
        if count <= 0:
            return b""
        fd = self._open_node_file(node)
        try:
            entries = self._entries(node, fd, 0, first, count, {})
            parts = []
            nid, opener = node.ref["node_id"], node.opener
            i = 0
            while i < len(entries):
                # read runs of consecutive locations with one pread
                loc0 = entries[i][1]
                run = 1
                while (i + run < len(entries) and run < _RUN
                       and entries[i + run][1] == loc0 + run):
                    run += 1
                for k in range(run):
                    self._check_location(node, entries[i + k][1], self._what(node, first + i + k))
                raw = os.pread(fd, run * BLOCK_SIZE, loc0 * BLOCK_SIZE)
                mv = memoryview(raw)
                for k in range(run):
                    nonce, _, mac = entries[i + k]
                    piece = mv[k * BLOCK_SIZE:(k + 1) * BLOCK_SIZE]
                    data = None
                    if len(piece) == BLOCK_SIZE:
                        data = opener.open(nonce, POSITION_PACK(nid, KIND_DATA, 0, first + i + k), piece, mac)
                    if data is None:
                        self._fail(f"{self._what(node, first + i + k)} fails its MAC")
                    parts.append(data)
                i += run
            return b"".join(parts)
        finally:
            os.close(fd)

    def _all_index_blocks(self, node):
        """Check every index block of a node (verify_all)."""
        fd = self._open_node_file(node)
        try:
            memo = {}
            self._entries(node, fd, 0, 0, node.hdr["nblocks"], memo)
        finally:
            os.close(fd)

    def _content(self, node):
        return self._data(node, 0, node.hdr["nblocks"])[:node.hdr["size"]]

    def _listing(self, path, ref):
        d = self._dirs.get(path)
        if d is None:
            content = self._content(self._node(path, ref))
            try:
                d = dict(parse_dirents(content))
            except ValueError as e:
                problem = str(e)
            else:
                problem = None
            if problem:
                self._fail(f"directory {self._show(path)} is malformed: {problem}")
            self._dirs[path] = d
        return d

    # ---- path lookup --------------------------------------------------------------------------
    @staticmethod
    def _split(path):
        p = os.fsencode(path)
        parts = [c for c in p.split(b"/") if c and c != b"."]
        if b".." in parts:
            raise ValueError(f"image paths may not contain '..': {os.fsdecode(p)!r}")
        return parts

    def _resolve(self, path):
        parts = self._split(path)
        cur, ref = b"/", self._root_ref
        for name in parts:
            if not st_mod.S_ISDIR(ref["mode"]):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", os.fsdecode(cur))
            child = self._listing(cur, ref).get(name)
            cur = cur.rstrip(b"/") + b"/" + name
            if child is None:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", os.fsdecode(cur))
            ref = child
        return cur, ref

    # ---- the public interface -------------------------------------------------------------
    def stat(self, path):
        p, ref = self._resolve(path)
        h = self._node(p, ref).hdr
        return Stat(mode=h["mode"], size=h["size"], nlink=h["nlink"], uid=h["uid"], gid=h["gid"],
                    mtime_ns=h["mtime_ns"], ino=int.from_bytes(ref["node_id"][:8], "little") or 1,
                    node=ref["node_name"].hex())

    def listdir(self, path="/"):
        p, ref = self._resolve(path)
        if not st_mod.S_ISDIR(ref["mode"]):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", os.fsdecode(p))
        return [os.fsdecode(n) for n in self._listing(p, ref)]

    def readlink(self, path):
        p, ref = self._resolve(path)
        if not st_mod.S_ISLNK(ref["mode"]):
            raise OSError(errno.EINVAL, "Invalid argument", os.fsdecode(p))
        return os.fsdecode(self._content(self._node(p, ref)))

    def read(self, path, offset=0, length=None):
        """Bytes of a regular file; only the blocks that hold them are read and checked."""
        p, ref = self._resolve(path)
        if st_mod.S_ISDIR(ref["mode"]):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", os.fsdecode(p))
        if not st_mod.S_ISREG(ref["mode"]):
            raise OSError(errno.EINVAL, "Invalid argument", os.fsdecode(p))
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        node = self._node(p, ref)
        size = node.hdr["size"]
        end = size if length is None else min(size, offset + length)
        if offset >= end:
            return b""
        first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        data = self._data(node, first, last - first + 1)
        base = first * BLOCK_SIZE
        return data[offset - base:end - base]

    def walk(self, top="/"):
        """Like os.walk, top down: (dirpath, dirnames, filenames); directories checked."""
        p, ref = self._resolve(top)
        if not st_mod.S_ISDIR(ref["mode"]):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", os.fsdecode(p))
        stack = [(p, ref)]
        while stack:
            p, ref = stack.pop()
            listing = self._listing(p, ref)
            dirs = [n for n, r in listing.items() if st_mod.S_ISDIR(r["mode"])]
            files = [n for n, r in listing.items() if not st_mod.S_ISDIR(r["mode"])]
            yield os.fsdecode(p), [os.fsdecode(n) for n in dirs], [os.fsdecode(n) for n in files]
            base = p.rstrip(b"/") + b"/"
            for n in reversed(dirs):
                stack.append((base + n, listing[n]))

    def verify_all(self):
        """Check every node and every block of the image; returns a VerifyReport."""
        report = VerifyReport(nodes={})
        stack = [(b"/", self._root_ref)]
        while stack:
            p, ref = stack.pop()
            node = self._node(p, ref)
            name = ref["node_name"].hex()
            if name in report.nodes:
                self._fail(f"{kind_name(ref['mode'])} {self._show(p)} shares node file {name} "
                           f"with {self._show(os.fsencode(report.nodes[name]))}")
            report.nodes[name] = os.fsdecode(p)
            mode = node.hdr["mode"]
            self._all_index_blocks(node)
            if st_mod.S_ISDIR(mode):
                report.dirs += 1
                listing = self._listing(p, ref)
                base = p.rstrip(b"/") + b"/"
                for n in reversed(list(listing)):
                    stack.append((base + n, listing[n]))
            elif st_mod.S_ISLNK(mode):
                report.symlinks += 1
                self._content(node)
            else:
                report.files += 1
                report.bytes += node.hdr["size"]
                nb = node.hdr["nblocks"]
                for first in range(0, nb, 4 * _RUN):
                    self._data(node, first, min(4 * _RUN, nb - first))
        return report


def open_image(dest, root_mac, key=None, name=None, base=None):
    """Open the SEFS image in folder `dest`, checking its superblock against root_mac.

    key: the 16-byte image key of an encrypted image (None for integrity-only).
    name: how errors call the image (e.g. "build/mount/__ROOT"); the folder by default.
    base: the folder `dest` is relative to (the instance): no component below it may
    be a symbolic link."""
    return Image(dest, root_mac, key=key, name=name, base=base)
