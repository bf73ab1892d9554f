"""hostfs: a host folder mounted in the enclave, confined to it (Occlum's HostFS).

Confinement: an inode is its names below the folder, and every host call reaches it
from a descriptor of the folder itself, one component at a time, with O_NOFOLLOW:
the host never follows a symbolic link on the guest's behalf. The links stored in the
folder are read and followed by the VFS (path.py) as guest paths, so an absolute
target means the enclave's `/` and `..` stops at the enclave's root: no name, `..` or
link leads to a host file outside the folder. (A host process that moves directories
around while the enclave runs is outside the threat model.)

Directory descriptors of recent lookups are kept (few, LRU) and dropped whenever the
guest renames or removes a directory, so that a kept one never names a moved folder.

What the enclave's own trust rests on is never reachable, whatever folder is mounted
(the default /host is the instance folder itself): the instance's build/ (the signed
enclave, the image) and run/ (the writable layers and their lock), every sefs mount's
folder, and the platform secret are `protected` (by device and inode, so that no other
name or link reaches them either). A protected entry is still listed by readdir, but
looking it up, and renaming or removing it, fails with EACCES: the name exists (mkdir
of it gives EEXIST, as it must), it is only out of bounds, which is what EACCES says
and what `ls` and `find` report and step over. ENOENT would contradict the listing and
EEXIST. A hostfs whose folder lies inside a protected one is not mounted at all.
"""
import os
import stat as st
from collections import OrderedDict

from ..errno import EACCES, EINVAL, EISDIR, EXDEV, SysError
from .vfs import FileSystem, Handle, Inode, Metadata, host_statfs, sys_error

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEPT_DIRS = 32


def _meta(fs, s) -> Metadata:
    return Metadata(s.st_ino, s.st_mode, s.st_size, s.st_nlink, dev=fs.dev, uid=0, gid=0,
                    rdev=s.st_rdev, atime_ns=s.st_atime_ns, mtime_ns=s.st_mtime_ns,
                    ctime_ns=s.st_ctime_ns, blocks=s.st_blocks)


class HostFs(FileSystem):
    name = "hostfs"
    magic = 0x65735546       # statfs f_type: FUSE's, the other pass-through file system

    def __init__(self, folder, dev: int = 0, protected=()):
        """protected: host paths the guest must not reach through this mount (see above)."""
        self.folder = os.path.realpath(folder)
        self.dev = dev
        self._protected = set()           # (st_dev, st_ino)
        for path in protected:
            real = os.path.realpath(path)
            if self.folder == real or self.folder.startswith(real.rstrip("/") + "/"):
                raise PermissionError(EACCES, "hostfs: the folder %s is inside %s, which the "
                                      "enclave's trust depends on" % (self.folder, path))
            try:
                s = os.stat(path, follow_symlinks=False)
            except OSError:
                continue                   # not there (yet): nothing to reach
            self._protected.add((s.st_dev, s.st_ino))
        try:
            self._root_fd = os.open(self.folder, _DIR_FLAGS)
        except OSError as exc:
            raise OSError(exc.errno, "hostfs: cannot open the folder %s: %s" % (self.folder, exc.strerror))
        self._dirs = OrderedDict()         # names tuple -> O_PATH descriptor

    def root(self):
        return HostInode(self, ())

    def statfs(self):
        return host_statfs(self.folder)

    def close(self) -> None:
        self.forget_dirs()
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ---- descriptors ------------------------------------------------------------------
    def dir_fd(self, names: tuple) -> int:
        """An O_PATH descriptor of the directory `names`, walked from the folder."""
        if not names:
            return self._root_fd
        fd = self._dirs.get(names)
        if fd is not None:
            self._dirs.move_to_end(names)
            return fd
        parent = self.dir_fd(names[:-1])
        try:
            fd = os.open(names[-1], _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise sys_error(exc) from None
        self._dirs[names] = fd
        if len(self._dirs) > _KEPT_DIRS:
            _, old = self._dirs.popitem(last=False)
            os.close(old)
        return fd

    def stat(self, names: tuple):
        """lstat of the entry `names`; EACCES for a protected one."""
        try:
            if not names:
                return os.stat(self._root_fd)
            s = os.stat(names[-1], dir_fd=self.dir_fd(names[:-1]), follow_symlinks=False)
        except OSError as exc:
            raise sys_error(exc) from None
        if (s.st_dev, s.st_ino) in self._protected:
            raise SysError(EACCES)
        return s

    def forget_dirs(self) -> None:
        while self._dirs:
            os.close(self._dirs.popitem()[1])

    def call(self, fn, names: tuple, *args, **kwargs):
        """fn(last name, *args, dir_fd=<its directory>, **kwargs), errors as SysError."""
        try:
            return fn(names[-1], *args, dir_fd=self.dir_fd(names[:-1]), **kwargs)
        except OSError as exc:
            raise sys_error(exc) from None

    def open_fd(self, names: tuple, flags: int, mode: int = 0o666) -> int:
        if not names:
            flags &= ~os.O_NOFOLLOW
            try:
                return os.open(".", flags | os.O_CLOEXEC, mode, dir_fd=self._root_fd)
            except OSError as exc:
                raise sys_error(exc) from None
        return self.call(os.open, names, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


class HostInode(Inode):
    __slots__ = ("fs", "names")

    def __init__(self, fs, names: tuple):
        self.fs, self.names = fs, names

    def _child(self, name):
        return self.names + (name,)

    def metadata(self) -> Metadata:
        return _meta(self.fs, self.fs.stat(self.names))

    # ---- directories ----------------------------------------------------------------
    def lookup(self, name):
        inode = HostInode(self.fs, self._child(name))
        inode.metadata()               # ENOENT now, not at the first use
        return inode

    def readdir(self):
        fd = self.fs.open_fd(self.names, os.O_RDONLY | os.O_DIRECTORY)
        try:
            out = []
            with os.scandir(fd) as it:
                for entry in it:
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue
                    out.append((entry.name, entry.inode(), st.S_IFMT(mode) >> 12))
            return out
        except OSError as exc:
            raise sys_error(exc) from None
        finally:
            os.close(fd)

    def create(self, name, mode):
        fd = self.fs.open_fd(self._child(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode & 0o7777)
        os.close(fd)
        return HostInode(self.fs, self._child(name))

    def mkdir(self, name, mode):
        self.fs.call(os.mkdir, self._child(name), mode & 0o7777)
        return HostInode(self.fs, self._child(name))

    def symlink(self, name, target):
        # os.symlink(src, dst, dir_fd=...): the target first, then the name
        try:
            os.symlink(target, name, dir_fd=self.fs.dir_fd(self.names))
        except OSError as exc:
            raise sys_error(exc) from None
        return HostInode(self.fs, self._child(name))

    def link(self, name, inode):
        if not isinstance(inode, HostInode) or inode.fs is not self.fs:
            raise SysError(EXDEV)
        fs = self.fs
        try:
            os.link(inode.names[-1], name, src_dir_fd=fs.dir_fd(inode.names[:-1]),
                    dst_dir_fd=fs.dir_fd(self.names), follow_symlinks=False)
        except OSError as exc:
            raise sys_error(exc) from None

    def unlink(self, name):
        child = HostInode(self.fs, self._child(name))
        if child.metadata().is_dir:
            raise SysError(EISDIR)
        self.fs.call(os.unlink, child.names)

    def rmdir(self, name):
        self.fs.stat(self._child(name))          # a protected folder: EACCES
        self.fs.call(os.rmdir, self._child(name))
        self.fs.forget_dirs()

    def rename(self, old_name, new_dir, new_name):
        if not isinstance(new_dir, HostInode) or new_dir.fs is not self.fs:
            raise SysError(EXDEV)
        fs = self.fs
        fs.stat(self._child(old_name))              # a protected entry: EACCES
        try:
            fs.stat(new_dir._child(new_name))       # nor may it be replaced
        except SysError as exc:
            if exc.errno == EACCES:
                raise
        try:
            os.rename(old_name, new_name, src_dir_fd=fs.dir_fd(self.names),
                      dst_dir_fd=fs.dir_fd(new_dir.names))
        except OSError as exc:
            raise sys_error(exc) from None
        fs.forget_dirs()

    # ---- links, contents, attributes ----------------------------------------------------------
    def readlink(self):
        if not self.names:
            raise SysError(EINVAL)
        return self.fs.call(os.readlink, self.names)

    def open(self, flags):
        meta = self.metadata()
        if meta.is_dir:
            return HostDirHandle(self)
        access = flags & 3
        host_flags = (os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDWR)[access]
        if st.S_ISFIFO(meta.mode):
            host_flags |= os.O_NONBLOCK     # opening a FIFO must not stop the enclave
        return HostFileHandle(self, self.fs.open_fd(self.names, host_flags))

    def truncate(self, size):
        if size < 0:
            raise SysError(EINVAL)
        fd = self.fs.open_fd(self.names, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
        except OSError as exc:
            raise sys_error(exc) from None
        finally:
            os.close(fd)

    def set_mode(self, mode):
        # chmod through an O_PATH descriptor's /proc link: the file itself, never a
        # link's target (Linux has no lchmod)
        fd = self.fs.open_fd(self.names, os.O_PATH)
        try:
            if st.S_ISLNK(os.fstat(fd).st_mode):
                return
            os.chmod("/proc/self/fd/%d" % fd, mode & 0o7777)
        except OSError as exc:
            raise sys_error(exc) from None
        finally:
            os.close(fd)

    def set_times(self, atime_ns, mtime_ns):
        if atime_ns is None or mtime_ns is None:
            meta = self.metadata()
            atime_ns = meta.atime_ns if atime_ns is None else atime_ns
            mtime_ns = meta.mtime_ns if mtime_ns is None else mtime_ns
        if not self.names:      # the folder's descriptor is O_PATH: through its /proc link
            try:
                os.utime("/proc/self/fd/%d" % self.fs.dir_fd(()), ns=(atime_ns, mtime_ns))
            except OSError as exc:
                raise sys_error(exc) from None
            return
        self.fs.call(os.utime, self.names, ns=(atime_ns, mtime_ns), follow_symlinks=False)


class HostDirHandle(Handle):
    pass


class HostFileHandle(Handle):
    """An open host file: reads go straight into guest memory (preadv into the view)."""

    def __init__(self, inode, fd):
        super().__init__(inode)
        self.fd = fd

    def read_into(self, offset, buf) -> int:
        try:
            return os.preadv(self.fd, [buf], offset)
        except OSError as exc:
            raise sys_error(exc) from None

    def write_at(self, offset, data) -> int:
        try:
            return os.pwrite(self.fd, data, offset)
        except OSError as exc:
            raise sys_error(exc) from None

    def metadata(self) -> Metadata:
        try:
            return _meta(self.inode.fs, os.fstat(self.fd))
        except OSError as exc:
            raise sys_error(exc) from None

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncate(self, size) -> None:
        if size < 0:
            raise SysError(EINVAL)
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise sys_error(exc) from None

    def sync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise sys_error(exc) from None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

