"""The VFS's vocabulary: inode metadata, the Inode and FileSystem interfaces, and the
handle an open file does its I/O through (Occlum's INode trait and FileHandle, in Python).

Every file system type (unionfs, hostfs, ramfs, devfs, procfs) implements `Inode`;
the path walk (path.py) and the open file descriptions (file.py) only use these
methods. An operation a kind of inode does not offer fails with the errno Linux gives
(ENOTDIR for directory operations on a file, EINVAL for readlink on a non-link...).
"""
import abc
import os
import stat as st
import time

from ..errno import EINVAL, EIO, EISDIR, ENOTDIR, EPERM, ESPIPE, SysError

S_IFMT = 0o170000      # the type bits of st_mode (the stat module only has a function)
S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR = st.S_IFDIR, st.S_IFREG, st.S_IFLNK, st.S_IFCHR
DT_UNKNOWN, DT_CHR, DT_DIR, DT_REG, DT_LNK = 0, 2, 4, 8, 10
NAME_MAX = 255
BLOCK_SIZE = 4096


def dtype_of(mode: int) -> int:
    """d_type of a getdents64 record from st_mode's type bits."""
    return (mode & S_IFMT) >> 12


def now_ns() -> int:
    return time.time_ns()


class Metadata:
    """What stat(2) reports of an inode (Occlum's Metadata)."""
    __slots__ = ("dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size", "blksize",
                 "blocks", "atime_ns", "mtime_ns", "ctime_ns")

    def __init__(self, ino, mode, size=0, nlink=1, *, dev=0, uid=0, gid=0, rdev=0,
                 atime_ns=0, mtime_ns=0, ctime_ns=0, blocks=None):
        self.dev, self.ino, self.mode, self.nlink = dev, ino, mode, nlink
        self.uid, self.gid, self.rdev, self.size = uid, gid, rdev, size
        self.blksize = BLOCK_SIZE
        self.blocks = (size + 511) // 512 if blocks is None else blocks
        self.atime_ns, self.mtime_ns, self.ctime_ns = atime_ns, mtime_ns, ctime_ns

    @property
    def is_dir(self) -> bool:
        return self.mode & S_IFMT == S_IFDIR

    @property
    def is_symlink(self) -> bool:
        return self.mode & S_IFMT == S_IFLNK

    @property
    def is_reg(self) -> bool:
        return self.mode & S_IFMT == S_IFREG

    def __repr__(self):
        return "Metadata(ino=%d mode=%o size=%d)" % (self.ino, self.mode, self.size)


def host_statfs(folder):
    """statfs numbers (4 KiB blocks) of the host file system holding `folder`."""
    try:
        s = os.statvfs(folder)
    except OSError:
        return 0, 0, 0, 0, 0
    scale = s.f_frsize / BLOCK_SIZE
    return (int(s.f_blocks * scale), int(s.f_bfree * scale), int(s.f_bavail * scale),
            s.f_files, s.f_ffree)


def sys_error(exc: OSError) -> SysError:
    """A host OSError (or a layer's) as the errno the guest sees (the host's numbers
    are Linux's x86-64 numbers: they map one to one)."""
    return SysError(exc.errno or EIO)


class FileSystem(abc.ABC):
    """A mounted file system: its root inode, a device number, sync and close."""
    name = "fs"
    dev = 0
    read_only = False
    magic = 0x01021994        # statfs f_type: TMPFS_MAGIC unless a type says otherwise

    def statfs(self):
        """(blocks, free blocks, available blocks, files, free files), 4 KiB blocks."""
        return 0, 0, 0, 0, 0

    @abc.abstractmethod
    def root(self):
        """The file system's root directory inode."""

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class Inode(abc.ABC):
    """One file of a file system. Subclasses override what their kind offers."""
    fs = None

    @abc.abstractmethod
    def metadata(self) -> Metadata:
        """The file's stat fields."""

    def mode(self) -> int:
        """st_mode, or at least its type bits: the path walk only needs those, and some
        file systems know them without asking their storage."""
        return self.metadata().mode

    # ---- directories (names are str, never "", "." or "..") -------------------------
    def lookup(self, name: str):
        raise SysError(ENOTDIR)

    def readdir(self):
        """[(name, ino, d_type)] without "." and ".."."""
        raise SysError(ENOTDIR)

    def create(self, name: str, mode: int):
        raise SysError(ENOTDIR)

    def mkdir(self, name: str, mode: int):
        raise SysError(ENOTDIR)

    def symlink(self, name: str, target: str):
        raise SysError(ENOTDIR)

    def link(self, name: str, inode):
        raise SysError(ENOTDIR)

    def unlink(self, name: str):
        raise SysError(ENOTDIR)

    def rmdir(self, name: str):
        raise SysError(ENOTDIR)

    def rename(self, old_name: str, new_dir, new_name: str):
        raise SysError(ENOTDIR)

    # ---- symbolic links ---------------------------------------------------------------
    def readlink(self) -> str:
        raise SysError(EINVAL)

    def magic_target(self):
        """A /proc/<pid>/fd/N link is followed to the open file itself, not by path:
        (path names, inode), or None for an ordinary link."""
        return None

    # ---- contents and attributes -------------------------------------------------------
    def open(self, flags: int):
        """The handle an open file description does its I/O through."""
        if self.metadata().is_dir:
            return DirHandle(self)
        raise SysError(EPERM)

    def truncate(self, size: int) -> None:
        raise SysError(EISDIR if self.metadata().is_dir else EINVAL)

    def set_mode(self, mode: int) -> None:
        raise SysError(EPERM)

    def set_times(self, atime_ns, mtime_ns) -> None:
        """None leaves a time unchanged."""

    def sync(self) -> None:
        pass


class Handle:
    """I/O of one open file. `stream` handles (devices, pipes, the host's stdio) have no
    offset: lseek on them returns 0 or ESPIPE (`seekable`)."""
    stream = False
    seekable = True
    anonymous = False         # a mapping of it is plain memory (/dev/zero): nothing to write back

    def __init__(self, inode):
        self.inode = inode

    def read_into(self, offset: int, buf) -> int:
        raise SysError(EISDIR if self.inode.metadata().is_dir else EINVAL)

    def write_at(self, offset: int, data) -> int:
        raise SysError(EISDIR if self.inode.metadata().is_dir else EINVAL)

    def pread_into(self, offset: int, buf) -> int:
        """pread on a stream: ESPIPE unless the stream has positions."""
        raise SysError(ESPIPE)

    def pwrite_at(self, offset: int, data) -> int:
        raise SysError(ESPIPE)

    def size(self) -> int:
        return self.metadata().size

    def metadata(self) -> Metadata:
        return self.inode.metadata()

    def truncate(self, size: int) -> None:
        self.inode.truncate(size)

    def sync(self) -> None:
        self.inode.sync()

    def mmap_data(self) -> bytes:
        """The whole file, for a file mapping."""
        size = self.size()
        buf = bytearray(size)
        got = self.read_into(0, memoryview(buf)) if size else 0
        return bytes(buf[:got])

    def ioctl_nread(self, offset: int) -> int:
        """FIONREAD: bytes readable now."""
        return max(0, self.size() - offset)

    def release(self) -> None:
        pass


class DirHandle(Handle):
    """A directory open for getdents64: no reads or writes."""

    def size(self) -> int:
        return self.metadata().size


class BytesHandle(Handle):
    """A read-only file whose contents are made when it is opened (procfs)."""

    def __init__(self, inode, data: bytes):
        super().__init__(inode)
        self.data = data

    def read_into(self, offset, buf) -> int:
        piece = self.data[offset:offset + len(buf)]
        buf[:len(piece)] = piece
        return len(piece)

    def write_at(self, offset, data) -> int:
        raise SysError(EINVAL)

    def size(self) -> int:
        return len(self.data)


def integrity_failure(exc) -> SysError:
    """A block of a protected layer failed its check while the enclave runs: the guest
    gets EIO, and the run's stderr gets one line naming the block even with logging
    off (tampering must not pass silently)."""
    from . import report_integrity_error
    report_integrity_error(str(exc))
    return SysError(EIO)
