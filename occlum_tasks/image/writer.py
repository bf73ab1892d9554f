"""Encodes a source tree (instance/image) into a SEFS image folder (build/mount/__ROOT).

The layout is in format.py and docs/formats.md, the sealing of one node in encode.py.
This module orders the work: scan the tree (lstat only); encode each file or symlink
whose (size, mtime_ns, inode, mode) differs from the cache, several at a time (hashing,
AES and file I/O release the GIL, and creating files is slow on a busy disk); encode
the directories bottom up, in memory; write the superblock; and only then delete the
node files that are no longer referenced.

Node files are content addressed (their name is their header's tag), so a rebuild
never overwrites a node that the old superblock still points to: a build killed at any
moment leaves the old image or the new one, never a mixture that looks complete.

No symbolic link on the host is followed, in the source or in the destination (a guest
can plant links through hostfs): folders are walked with descriptors and O_NOFOLLOW
(fsutil), a file read is checked to be the inode the scan saw, and the destination's
files are created (O_EXCL), renamed and removed relative to its folder's descriptor.
"""
import json
import os
import stat as st_mod
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .. import fsutil
from ..errors import OcclumError
from . import keys as K
from .encode import BytesChunks, FdSink, FileChunks, MemSink, encode_node, node_ref
from .format import (
    BLOCK_SIZE, FLAG_ENCRYPTED, FORMAT_VERSION, KIND_SUPERBLOCK, MAC_SIZE, NODE_NAME_HEX,
    SUPERBLOCK, SUPERBLOCK_AAD_END, SUPERBLOCK_FILE, SUPERBLOCK_MAGIC, TMP_PREFIX,
    ZERO_NODE_ID, ZERO_NONCE, pack_dirent, position,
)
from .seal import seal

CACHE_FORMAT = "occlum-sefs-cache/1"
_HEX = frozenset("0123456789abcdef")
_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
# File times come from a clock that ticks every few milliseconds: a file changed right
# after the writer read it can keep its size and mtime. So a cache entry is trusted only
# if the file's mtime is older than the cached build's start by this margin ("racy" files
# are read again, once).
RACY_NS = 100_000_000


@dataclass
class BuildStats:
    root_mac: bytes = b""
    files_encoded: int = 0      # regular files and symlinks read and encoded this time
    bytes_encoded: int = 0      # their bytes (a symlink counts its target's length)
    files_total: int = 0        # regular files and symlinks in the tree
    bytes_total: int = 0
    dirs_total: int = 0
    dirs_written: int = 0       # directory node files that had to be written
    nodes_written: int = 0      # node files written (files, symlinks, directories)
    nodes_deleted: int = 0      # node files no longer referenced, deleted at the end


class _Src:
    """One entry of the source tree, as lstat saw it."""
    __slots__ = ("fs_path", "image_path", "st", "children", "target")

    def __init__(self, fs_path, image_path, st, children=None, target=None):
        self.fs_path = fs_path          # bytes, as the host names it
        self.image_path = image_path    # bytes, absolute inside the image
        self.st = st
        self.children = children        # [(name, _Src)] sorted, for directories only
        self.target = target            # a symbolic link's target, read by the scan


def _kind_word(mode):
    for test, word in ((st_mod.S_ISSOCK, "socket"), (st_mod.S_ISFIFO, "FIFO"),
                       (st_mod.S_ISCHR, "character device"), (st_mod.S_ISBLK, "block device")):
        if test(mode):
            return word
    return "special file"


def _scan(dir_fd, fs_path, image_path, st, counts, leaves):
    """The tree under a folder (its descriptor), walked without following a link;
    sockets, FIFOs, devices and unreadable folders fail."""
    try:
        with os.scandir(dir_fd) as it:
            found = [(os.fsencode(e.name), e.stat(follow_symlinks=False)) for e in it]
    except OSError as e:
        raise OcclumError(f"{os.fsdecode(fs_path)}: cannot read the folder ({e.strerror})") from None
    found.sort()        # bytewise: the same order on every machine and locale
    children = []
    for name, cst in found:
        child_fs = os.path.join(fs_path, name)
        child_img = image_path.rstrip(b"/") + b"/" + name
        mode = cst.st_mode
        if st_mod.S_ISDIR(mode):
            counts["dirs"] += 1
            try:
                cfd = os.open(name, fsutil.DIR_FLAGS, dir_fd=dir_fd)
            except OSError as e:
                raise OcclumError(f"{os.fsdecode(child_fs)}: cannot read the folder "
                                  f"({e.strerror}; was it replaced while the image was built?)") from None
            try:
                opened = os.fstat(cfd)
                if (opened.st_ino, opened.st_dev) != (cst.st_ino, cst.st_dev):
                    raise OcclumError(f"{os.fsdecode(child_fs)}: was replaced while the image "
                                      "was built; build again")
                children.append((name, _scan(cfd, child_fs, child_img, cst, counts, leaves)))
            finally:
                os.close(cfd)
        elif st_mod.S_ISREG(mode) or st_mod.S_ISLNK(mode):
            counts["files"] += 1
            counts["bytes"] += cst.st_size
            target = None
            if st_mod.S_ISLNK(mode):
                try:
                    target = os.readlink(name, dir_fd=dir_fd)
                except OSError as e:
                    raise OcclumError(f"{os.fsdecode(child_fs)}: cannot read the link "
                                      f"({e.strerror})") from None
            leaf = _Src(child_fs, child_img, cst, target=target)
            leaves.append(leaf)
            children.append((name, leaf))
        else:
            raise OcclumError(
                f"{os.fsdecode(child_fs)}: is a {_kind_word(mode)}; an image holds only "
                f"regular files, directories and symbolic links")
    return _Src(fs_path, image_path, st, children)


class _Builder:
    def __init__(self, src_dir, dest, key, cache, progress, force=False, file_mode=0o644,
                 base=None):
        self.src = Path(src_dir)
        self.base = base
        self.force = force
        self.file_mode = file_mode
        self.dest = Path(dest)
        self.key = K.check_key(key)
        self.flags = FLAG_ENCRYPTED if self.key is not None else 0
        self.cache_path = Path(cache) if cache is not None else None
        self.progress = progress
        self.stats = BuildStats()
        self.done_bytes = 0
        self.referenced = set()
        self.old_cache = {}
        self.new_cache = {}
        self.existing = {}          # node file name -> size, as found before this build
        self.incremental = False    # a usable cache was found: trust unchanged node files
        self.refs = {}              # image path of a leaf -> its NODE_REF bytes
        self.started_ns = time.time_ns()
        self.trust_before_ns = 0    # cache entries with an older mtime may be trusted

    # ---- the whole build ----------------------------------------------------------------
    def run(self):
        self.src_fd = self.dfd = None
        try:
            return self._run()
        finally:
            for fd in (self.src_fd, self.dfd):
                if fd is not None:
                    os.close(fd)
            self.src_fd = self.dfd = None

    def _open_folder(self, path, what, create=False):
        """A descriptor of the source or the destination folder, reached without a link."""
        try:
            return fsutil.open_dir(path, base=self.base, create=create)
        except fsutil.LinkRefused:
            raise
        except NotADirectoryError:
            raise OcclumError(f"{path}: is not a folder") from None
        except OSError as e:
            raise OcclumError(f"{path}: cannot {what} ({e.strerror})") from None

    def _run(self):
        src, dest = self.src, self.dest
        self.src_fd = self._open_folder(src, "read the image folder")
        src_st = os.fstat(self.src_fd)
        rsrc = Path(os.path.realpath(f"/proc/self/fd/{self.src_fd}"))
        rdest = (Path(self.base) / dest if self.base is not None else dest).resolve()
        if rdest == rsrc or rsrc in rdest.parents or rdest in rsrc.parents:
            raise OcclumError(f"{dest}: the image folder and its source {src} must not contain each other")

        counts = {"files": 0, "bytes": 0, "dirs": 1}
        leaves = []
        root = _scan(self.src_fd, os.fsencode(src), b"/", src_st, counts, leaves)
        self.stats.files_total = counts["files"]
        self.stats.bytes_total = counts["bytes"]
        self.stats.dirs_total = counts["dirs"]

        self.dfd = self._open_folder(dest, "use it as the image folder", create=True)
        try:
            with os.scandir(self.dfd) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        self.existing[e.name] = e.stat(follow_symlinks=False).st_size
        except OSError as e:
            raise OcclumError(f"{dest}: cannot use it as the image folder ({e.strerror})") from None
        self._load_cache(rdest)

        self._encode_leaves(leaves)
        root_ref = self._encode_dir(root)
        sb = self._superblock(root_ref)
        self.stats.root_mac = sb[SUPERBLOCK.offsets["root_mac"]:][:MAC_SIZE]
        self._write_superblock(sb)
        self._collect_garbage()
        self._save_cache(rdest)
        if self.progress is not None:
            self.progress(self.stats.bytes_total, self.stats.bytes_total)
        return self.stats

    # ---- cache ---------------------------------------------------------------------------
    def _key_check_hex(self):
        return K.key_check(self.key).hex() if self.key is not None else None

    def _load_cache(self, rdest):
        if self.cache_path is None or self.force:
            return
        try:
            data = json.loads(fsutil.read_file(self.cache_path, base=self.base))
            if (data.get("format") == CACHE_FORMAT and data.get("dest") == str(rdest)
                    and data.get("key_check") == self._key_check_hex()
                    and isinstance(data.get("nodes"), dict) and isinstance(data.get("started_ns"), int)):
                self.old_cache = data["nodes"]
                self.trust_before_ns = data["started_ns"] - RACY_NS
                self.incremental = True
        except (OSError, ValueError, AttributeError):
            pass        # no usable cache: encode everything

    def _save_cache(self, rdest):
        if self.cache_path is None:
            return
        data = {"format": CACHE_FORMAT, "dest": str(rdest), "key_check": self._key_check_hex(),
                "started_ns": self.started_ns, "nodes": self.new_cache}
        fsutil.write_atomic(self.cache_path, json.dumps(data, separators=(",", ":")),
                            base=self.base)

    def _cached(self, src):
        """(NODE_REF, cache entry) of an unchanged file whose node file is still there."""
        entry = self.old_cache.get(os.fsdecode(src.image_path))
        s = src.st
        if (not isinstance(entry, list) or len(entry) != 7
                or entry[:4] != [s.st_size, s.st_mtime_ns, s.st_ino, s.st_mode]
                or s.st_mtime_ns >= self.trust_before_ns):
            return None
        mac_hex, digest_hex, node_size = entry[4:]
        if self.existing.get(mac_hex) != node_size:
            return None
        try:
            mac, digest = bytes.fromhex(mac_hex), bytes.fromhex(digest_hex)
        except (TypeError, ValueError):
            return None
        nid = K.node_id(self.key, src.image_path)
        fkey = K.file_key(self.key, nid, digest) if self.key is not None else None
        return node_ref(nid, mac, fkey, s.st_mode), entry

    # ---- files and symlinks ------------------------------------------------------------------
    def _encode_leaves(self, leaves):
        todo = []
        for src in leaves:
            hit = self._cached(src)
            if hit is None:
                todo.append(src)
                continue
            ref, entry = hit
            self.refs[src.image_path] = ref
            self.new_cache[os.fsdecode(src.image_path)] = entry
            self.referenced.add(entry[4])
            self.done_bytes += src.st.st_size
        self._report()
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=min(_WORKERS, len(todo))) as pool:
            pending = {pool.submit(self._encode_leaf, src): src for src in todo}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in done:
                        src = pending.pop(fut)
                        ref, entry, size, name = fut.result()     # re-raises a worker's error
                        self.refs[src.image_path] = ref
                        self.new_cache[os.fsdecode(src.image_path)] = entry
                        self.referenced.add(name)
                        self.stats.files_encoded += 1
                        self.stats.bytes_encoded += size
                        self.stats.nodes_written += 1
                        self.done_bytes += src.st.st_size
                    self._report()
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise

    def _report(self):
        if self.progress is not None:
            self.progress(min(self.done_bytes, self.stats.bytes_total), self.stats.bytes_total)

    def _encode_leaf(self, src):
        """Runs in a worker thread: read, seal and store one file or symlink."""
        shown = os.fsdecode(src.fs_path)
        nid = K.node_id(self.key, src.image_path)
        if st_mod.S_ISLNK(src.st.st_mode):
            st = src.st
            enc, name, _ = self._store(nid, st.st_mode, 1, BytesChunks(src.target), shown)
        else:
            try:
                # from the source folder's descriptor; the inode check below catches a
                # folder on the way swapped for a link since the scan
                fd = os.open(src.image_path.lstrip(b"/"), fsutil.READ_FLAGS, dir_fd=self.src_fd)
            except OSError as e:
                raise OcclumError(f"{shown}: cannot read it ({e.strerror})") from None
            try:
                st = os.fstat(fd)   # the cache records the state that was actually read
                if not st_mod.S_ISREG(st.st_mode):
                    raise OcclumError(f"{shown}: became a {_kind_word(st.st_mode)} while the image was built")
                if (st.st_dev, st.st_ino) != (src.st.st_dev, src.st.st_ino):
                    raise OcclumError(f"{shown}: was replaced while the image was built; build again")
                enc, name, _ = self._store(nid, st.st_mode, 1, FileChunks(fd, shown), shown,
                                           in_memory=False)
            finally:
                os.close(fd)
        entry = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, name,
                 enc.digest.hex() if enc.digest else "", enc.node_size]
        return node_ref(nid, enc.mac, enc.key, st.st_mode), entry, enc.size, name

    def _tmp_name(self):
        return "%s%d-%d" % (TMP_PREFIX, os.getpid(), int.from_bytes(os.urandom(6), "little"))

    def _create_tmp(self):
        tmp = self._tmp_name()
        return tmp, fsutil.open_file(self.dfd, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                     self.file_mode)

    def _store(self, *args, **kw):
        try:
            return self._store_node(*args, **kw)
        except OSError as e:    # reading errors are OcclumErrors already: this is the folder
            raise OcclumError(f"{self.dest}: cannot write the image ({e.strerror})") from None

    def _store_node(self, nid, mode, nlink, chunks, shown, in_memory=True, keep_existing=False):
        """Encode a node and put its file in place; returns (Encoded, name, written).

        in_memory: encode into memory first (small data: directories, link targets);
        otherwise stream into the temporary file straight from the read buffer.
        keep_existing: a node file of that name and size is left untouched (its name is
        its MAC, so the same name means the same bytes unless someone tampered with it)."""
        kw = dict(image_key=self.key, flags=self.flags, shown=shown)
        if in_memory:
            sink = MemSink()
            enc = encode_node(nid, mode, nlink, chunks, sink, **kw)
            name = enc.mac.hex()
            if keep_existing and self.existing.get(name) == enc.node_size:
                return enc, name, False
            tmp, fd = self._create_tmp()
            try:
                FdSink(fd).pwrite(sink.buf, 0)
            except BaseException:
                os.close(fd)
                os.unlink(tmp, dir_fd=self.dfd)
                raise
            os.close(fd)
        else:
            tmp, fd = self._create_tmp()
            try:
                enc = encode_node(nid, mode, nlink, chunks, FdSink(fd), **kw)
            except BaseException:
                os.close(fd)
                os.unlink(tmp, dir_fd=self.dfd)
                raise
            os.close(fd)
            name = enc.mac.hex()
        os.replace(tmp, name, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
        return enc, name, True

    # ---- directories ------------------------------------------------------------------------
    def _encode_dir(self, src):
        parts, subdirs = [], 0
        for name, child in src.children:
            if child.children is not None:
                subdirs += 1
                ref = self._encode_dir(child)
            else:
                ref = self.refs[child.image_path]
            parts.append(pack_dirent(name, ref))
        nid = K.node_id(self.key, src.image_path)
        mode = src.st.st_mode
        enc, name, written = self._store(nid, mode, 2 + subdirs, BytesChunks(b"".join(parts)),
                                         os.fsdecode(src.fs_path), keep_existing=self.incremental)
        if written:
            self.stats.dirs_written += 1
            self.stats.nodes_written += 1
        self.referenced.add(name)
        return node_ref(nid, enc.mac, enc.key, mode)

    # ---- the root pointer and the clean-up ---------------------------------------------------
    def _superblock(self, root_ref):
        aad_fields = dict(magic=SUPERBLOCK_MAGIC, version=FORMAT_VERSION, flags=self.flags,
                          block_size=BLOCK_SIZE, generation=0)
        sb_key = None
        if self.key is not None:
            salt = K.superblock_salt(self.key, root_ref)
            aad_fields.update(key_check=K.key_check(self.key), salt=salt)
            sb_key = K.superblock_key(self.key, salt)
        aad = SUPERBLOCK.pack(**aad_fields)[:SUPERBLOCK_AAD_END]
        stored, root_mac = seal(sb_key, ZERO_NONCE, position(ZERO_NODE_ID, KIND_SUPERBLOCK),
                                root_ref, aad)
        return aad + stored + root_mac

    def _write_superblock(self, sb):
        try:
            if fsutil.read_small(self.dfd, SUPERBLOCK_FILE, len(sb) + 1) == sb:
                return      # a no-op rebuild leaves the folder exactly as it was
        except OSError:
            pass
        tmp = TMP_PREFIX + SUPERBLOCK_FILE
        fd = fsutil.create_temporary(self.dfd, tmp, self.file_mode)
        try:
            FdSink(fd).pwrite(sb, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, SUPERBLOCK_FILE, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
        os.fsync(self.dfd)

    def _collect_garbage(self):
        """Delete node files the new superblock no longer reaches, and stale temporaries.

        Only names this writer makes are touched: anything else in the folder is left."""
        for name in self.existing:
            ours = (len(name) == NODE_NAME_HEX and set(name) <= _HEX) or name.startswith(TMP_PREFIX)
            if ours and name not in self.referenced:
                try:
                    os.unlink(name, dir_fd=self.dfd)
                except FileNotFoundError:
                    continue
                if not name.startswith(TMP_PREFIX):
                    self.stats.nodes_deleted += 1


def build_image(src_dir, dest, *, key=None, cache=None, progress=None, force=False,
                file_mode=0o644, base=None):
    """Encode the tree under src_dir into the SEFS folder dest; returns BuildStats.

    key: None for an integrity-only image (no key, deterministic), or the 16-byte image
    key for an encrypted one (deterministic too, for a given key). cache: a JSON file
    the writer keeps (e.g. build/.cache/image.json) so that a rebuild re-encodes only
    what changed. progress: optional callable(done_bytes, total_bytes), called from the
    calling thread after each file and once at the end. force: ignore the cache and
    rewrite every node file (repairs a damaged folder). file_mode: of the node files
    (0o600 when the tree holds a secret, such as a built-in image key). base: the folder
    the paths are relative to; no component below it (or below the working folder, for
    relative paths) may be a symbolic link (fsutil)."""
    return _Builder(src_dir, dest, key, cache, progress, force, file_mode, base).run()
