"""unionfs: the writable layer over the read-only image (Occlum's UnionFS at `/`).

Both layers are path based; a union inode is a path. What a path is made of, i.e.
which layer has it and of which type, is worked out from its parent's and kept in a
cache that every change of the namespace empties (changes are rare next to lookups).
Rules, as overlayfs:
- the upper entry wins; a lower entry shows only below a directory whose lower side
  shows, and only if the upper has no entry there, or has a directory that is not
  opaque over a lower directory (then the two merge);
- the first change to a lower file (open for writing, truncate, chmod, utime, link,
  rename) copies it up: its parents as directories, then the file with its mode and
  times; a lower directory renamed is EXDEV, as overlayfs without redirect_dir says;
- removing a name that the lower layer has leaves a whiteout; a directory made where
  one was removed is opaque, so the old lower contents stay hidden.
Without a writable layer (lower only) the union is read-only: EROFS.
A standalone sefs mount is a union without a lower layer.
"""
import posixpath

from ..errno import (EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, EROFS, EXDEV,
                     SysError)
from .vfs import (S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, DirHandle, FileSystem, Handle, Inode,
                  dtype_of, host_statfs)

COPY_CHUNK = 1 << 20


class Entry:
    """Which layers make one path: `upper`, the type bits of the upper entry (0: none);
    `lower`, those of the lower entry below it, shown or covered (0: none, or hidden
    by a whiteout); `lower_dir`: the lower directory shows through (merged)."""
    __slots__ = ("upper", "lower", "lower_dir")

    def __init__(self, upper, lower, lower_dir):
        self.upper, self.lower, self.lower_dir = upper, lower, lower_dir

    @property
    def kind(self):
        return self.upper or self.lower


class UnionFs(FileSystem):
    name = "unionfs"
    magic = 0x794C7630       # statfs f_type: OVERLAYFS_SUPER_MAGIC

    def __init__(self, lower, upper, dev: int = 0):
        if lower is None and upper is None:
            raise ValueError("a unionfs needs a layer")
        self.lower, self.upper, self.dev = lower, upper, dev
        self.read_only = upper is None
        self._cache = {}

    def root(self):
        return UnionInode(self, "/")

    def sync(self):
        if self.upper is not None:
            self.upper.sync()

    def statfs(self):
        folder = getattr(self.upper, "folder", None)
        return host_statfs(folder) if folder else (0, 0, 0, 0, 0)

    def close(self):
        if self.upper is not None:
            self.upper.close()

    # ---- what a path is made of ------------------------------------------------------
    def entry(self, path: str) -> Entry:
        e = self._cache.get(path, False)
        if e is False:
            e = self._cache[path] = self._make_entry(path)
        if e is None:
            raise SysError(ENOENT)
        return e

    def _make_entry(self, path):
        upper, lower = self.upper, self.lower
        if path == "/":
            return Entry(S_IFDIR if upper else 0, S_IFDIR if lower else 0, bool(lower))
        parent = self.entry(posixpath.dirname(path))
        if parent.kind != S_IFDIR:
            raise SysError(ENOTDIR)
        up = low = 0
        whiteout = False
        if parent.upper == S_IFDIR:
            meta = upper.lookup(path)
            if meta is not None:
                up = meta.mode & S_IFMT
            else:
                whiteout = parent.lower_dir and upper.is_whiteout(path)
        if parent.lower_dir and not whiteout:
            meta = lower.lstat(path)
            low = meta.mode & S_IFMT if meta is not None else 0
        if not up and not low:
            return None
        merged = low == S_IFDIR and (up == 0 or (up == S_IFDIR and not upper.is_opaque(path)))
        return Entry(up, low, merged)

    def changed(self) -> None:
        self._cache.clear()

    def writable(self):
        if self.upper is None:
            raise SysError(EROFS)
        return self.upper

    def copy_up(self, path: str) -> None:
        """Give `path` an upper entry (its parents first), copied from the lower one."""
        e = self.entry(path)
        if e.upper:
            return
        upper, lower = self.writable(), self.lower
        self.copy_up(posixpath.dirname(path))
        meta = lower.lstat(path)
        kind = meta.mode & S_IFMT
        if kind == S_IFDIR:
            upper.mkdir(path, meta.mode & 0o7777)
        elif kind == S_IFLNK:
            upper.symlink(lower.readlink(path), path)
        elif kind == S_IFREG:
            ino = upper.create(path, meta.mode & 0o7777)
            for offset in range(0, meta.size, COPY_CHUNK):
                upper.write(ino, offset, lower.read(path, offset, COPY_CHUNK))
        else:
            raise SysError(EPERM)
        if kind != S_IFLNK:
            upper.utime(path, meta.atime_ns, meta.mtime_ns)
        self.changed()

    def metadata(self, path: str):
        e = self.entry(path)
        if e.upper:
            meta = self.upper.lstat(path)
            if e.lower == e.upper:   # keep the inode number a file had before its copy-up
                meta.ino = self.lower.lstat(path).ino
        else:
            meta = self.lower.lstat(path)
            if meta is None:
                raise SysError(ENOENT)
        meta.dev = self.dev
        return meta


def _join(directory: str, name: str) -> str:
    return directory + name if directory == "/" else directory + "/" + name


class UnionInode(Inode):
    __slots__ = ("fs", "path")

    def __init__(self, fs, path):
        self.fs, self.path = fs, path

    def metadata(self):
        return self.fs.metadata(self.path)

    def mode(self):
        return self.fs.entry(self.path).kind

    def _dir(self) -> Entry:
        e = self.fs.entry(self.path)
        if e.kind != S_IFDIR:
            raise SysError(ENOTDIR)
        return e

    def _absent(self, name) -> str:
        """The path of a new name here: EEXIST if it is taken; the parent copied up."""
        self._dir()
        path = _join(self.path, name)
        try:
            self.fs.entry(path)
        except SysError as exc:
            if exc.errno != ENOENT:
                raise
        else:
            raise SysError(EEXIST)
        self.fs.copy_up(self.path)
        return path

    # ---- directories ----------------------------------------------------------------
    def lookup(self, name):
        self._dir()
        path = _join(self.path, name)
        self.fs.entry(path)
        return UnionInode(self.fs, path)

    def _names(self, e):
        fs, names = self.fs, {}
        if e.upper == S_IFDIR:
            names.update(dict.fromkeys(fs.upper.listdir(self.path)))
        if e.lower_dir:
            names.update(dict.fromkeys(fs.lower.listdir(self.path)))
        return names

    def readdir(self):
        e = self._dir()
        out = []
        for name in self._names(e):
            path = _join(self.path, name)
            try:
                child = self.fs.entry(path)
                out.append((name, self.fs.metadata(path).ino, dtype_of(child.kind)))
            except SysError:
                continue           # a whiteout
        return out

    def create(self, name, mode):
        path = self._absent(name)
        self.fs.writable().create(path, S_IFREG | (mode & 0o7777))
        self.fs.changed()
        return UnionInode(self.fs, path)

    def mkdir(self, name, mode):
        path = self._absent(name)
        upper = self.fs.writable()
        hidden = upper.is_whiteout(path)
        upper.mkdir(path, mode & 0o7777)
        if hidden:
            upper.set_opaque(path)     # what was removed here must stay hidden
        self.fs.changed()
        return UnionInode(self.fs, path)

    def symlink(self, name, target):
        path = self._absent(name)
        self.fs.writable().symlink(target, path)
        self.fs.changed()
        return UnionInode(self.fs, path)

    def link(self, name, inode):
        if not isinstance(inode, UnionInode) or inode.fs is not self.fs:
            raise SysError(EXDEV)
        if inode.mode() == S_IFDIR:
            raise SysError(EPERM)
        path = self._absent(name)
        self.fs.copy_up(inode.path)
        self.fs.writable().link(inode.path, path)
        self.fs.changed()

    def _remove(self, path, e) -> None:
        """Drop `path`'s upper entry and hide its lower one."""
        upper = self.fs.writable()
        if e.upper == S_IFDIR:
            upper.rmdir(path)          # whiteouts inside go with it
        elif e.upper:
            upper.unlink(path)
        if e.lower:
            self.fs.copy_up(self.path)
            upper.whiteout(path)
        self.fs.changed()

    def unlink(self, name):
        self._dir()
        path = _join(self.path, name)
        e = self.fs.entry(path)
        if e.kind == S_IFDIR:
            raise SysError(EISDIR)
        self.fs.writable()
        self._remove(path, e)

    def rmdir(self, name):
        self._dir()
        path = _join(self.path, name)
        e = self.fs.entry(path)
        if e.kind != S_IFDIR:
            raise SysError(ENOTDIR)
        self.fs.writable()
        if UnionInode(self.fs, path).readdir():
            raise SysError(ENOTEMPTY)
        self._remove(path, e)

    def rename(self, old_name, new_dir, new_name):
        fs = self.fs
        if not isinstance(new_dir, UnionInode) or new_dir.fs is not fs:
            raise SysError(EXDEV)
        self._dir()
        new_dir._dir()
        old, new = _join(self.path, old_name), _join(new_dir.path, new_name)
        e = fs.entry(old)
        if old == new:
            return
        upper = fs.writable()
        if e.kind == S_IFDIR and new.startswith(old + "/"):
            raise SysError(EINVAL)
        try:
            target = fs.entry(new)
        except SysError as exc:
            if exc.errno != ENOENT:
                raise
            target = None
        if target is not None:
            if e.kind == S_IFDIR:
                if target.kind != S_IFDIR:
                    raise SysError(ENOTDIR)
                if UnionInode(fs, new).readdir():
                    raise SysError(ENOTEMPTY)
            elif target.kind == S_IFDIR:
                raise SysError(EISDIR)
        if e.kind == S_IFDIR and e.lower_dir:
            raise SysError(EXDEV)      # a merged or lower directory: callers copy instead
        fs.copy_up(old)
        fs.copy_up(new_dir.path)
        hides_lower = (target is not None and target.lower) or upper.is_whiteout(new)
        upper.rename(old, new)         # replaces a file, an empty directory or a whiteout
        if e.kind == S_IFDIR and hides_lower:
            upper.set_opaque(new)
        if e.lower:
            upper.whiteout(old)
        fs.changed()

    # ---- links, contents, attributes ----------------------------------------------------------
    def readlink(self):
        e = self.fs.entry(self.path)
        if e.kind != S_IFLNK:
            raise SysError(EINVAL)
        layer = self.fs.upper if e.upper else self.fs.lower
        return layer.readlink(self.path)

    def open(self, flags):
        fs = self.fs
        e = fs.entry(self.path)
        if e.kind == S_IFDIR:
            return DirHandle(self)
        if e.kind != S_IFREG:
            raise SysError(EINVAL)
        if flags & 3 or flags & 0o1000:             # writing or O_TRUNC
            fs.writable()
            fs.copy_up(self.path)
            e = fs.entry(self.path)
        if e.upper:
            return UpperHandle(self, fs.upper.open_ref(self.path))
        return LowerHandle(self, fs.lower.lstat(self.path).size)

    def truncate(self, size):
        if size < 0:
            raise SysError(EINVAL)
        kind = self.mode()
        if kind != S_IFREG:
            raise SysError(EISDIR if kind == S_IFDIR else EINVAL)
        self.fs.writable()
        self.fs.copy_up(self.path)
        self.fs.upper.truncate(self.path, size)

    def set_mode(self, mode):
        self.fs.writable()
        self.fs.copy_up(self.path)
        self.fs.upper.chmod(self.path, mode & 0o7777)

    def set_times(self, atime_ns, mtime_ns):
        self.fs.writable()
        self.fs.copy_up(self.path)
        self.fs.upper.utime(self.path, atime_ns, mtime_ns)

    def sync(self):
        if self.fs.upper is not None:
            self.fs.upper.fsync(None)


class UpperHandle(Handle):
    """An open file of the writable layer, by inode number: it keeps working after the
    file is renamed or unlinked (the layer keeps an unlinked file until release)."""

    def __init__(self, inode, ino):
        super().__init__(inode)
        self.ino = ino
        self.layer = inode.fs.upper

    def read_into(self, offset, buf) -> int:
        return self.layer.read_into(self.ino, offset, buf)

    def write_at(self, offset, data) -> int:
        return self.layer.write(self.ino, offset, data)

    def metadata(self):
        """By inode number (right after a rename or an unlink); the inode number shown
        is the union's while the file is still under its name."""
        fs, path = self.inode.fs, self.inode.path
        meta = self.layer.lstat(self.ino)
        try:
            e = fs.entry(path)
            if e.lower == e.upper and fs.upper.lstat(path).ino == self.ino:
                meta.ino = fs.lower.lstat(path).ino
        except SysError:
            pass
        meta.dev = fs.dev
        return meta

    def size(self) -> int:
        return self.layer.lstat(self.ino).size

    def truncate(self, size) -> None:
        if size < 0:
            raise SysError(EINVAL)
        self.layer.truncate(self.ino, size)

    def sync(self) -> None:
        self.layer.fsync(self.ino)

    def release(self) -> None:
        if self.ino is not None:
            ino, self.ino = self.ino, None
            self.layer.release(ino)


class LowerHandle(Handle):
    """A lower file open for reading: the image never changes, so neither does its size."""

    def __init__(self, inode, size):
        super().__init__(inode)
        self.path, self.layer, self._size = inode.path, inode.fs.lower, size

    def read_into(self, offset, buf) -> int:
        if offset >= self._size:
            return 0
        return self.layer.read_into(self.path, offset, buf)

    def write_at(self, offset, data) -> int:
        raise SysError(EROFS)

    def size(self) -> int:
        return self._size
