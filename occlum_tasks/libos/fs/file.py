"""Open file descriptions: what open(2) creates and dup(2) shares (Linux's struct file).

The description holds the offset, the status flags and the handle its I/O goes
through; it was resolved once, at open, so a read or a write on it never walks a path
again. Descriptors (file_table.py) point at descriptions; the last close releases the
handle.
"""
from .. import log
from ..errno import EACCES, EBADF, EINVAL, EISDIR, ENODEV, ENXIO, ESPIPE, SysError
from .vfs import S_IFMT, S_IFREG

O_ACCMODE, O_RDONLY, O_WRONLY, O_RDWR = 0o3, 0o0, 0o1, 0o2
O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND = 0o100, 0o200, 0o400, 0o1000, 0o2000
O_NONBLOCK, O_DSYNC, O_ASYNC, O_DIRECT, O_LARGEFILE = 0o4000, 0o10000, 0o20000, 0o40000, 0o100000
O_DIRECTORY, O_NOFOLLOW, O_NOATIME, O_CLOEXEC = 0o200000, 0o400000, 0o1000000, 0o2000000
O_SYNC, O_PATH, O_TMPFILE = 0o4010000, 0o10000000, 0o20200000
# what F_SETFL may change (Linux's SETFL_MASK)
SETFL_MASK = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_ASYNC
SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4
MAX_OFFSET = (1 << 63) - 1


def open_handle(inode, flags: int):
    return inode.open(flags)


class OpenFile:
    __slots__ = ("loc", "inode", "handle", "flags", "offset", "refs", "dirents")

    def __init__(self, loc, handle, flags: int):
        self.loc = loc                 # where it was opened (for /proc/<pid>/fd, fchdir, *at)
        self.inode = loc.inode
        self.handle = handle           # None for an O_PATH descriptor
        self.flags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)
        self.offset = 0
        self.refs = 0                  # descriptors pointing here
        self.dirents = None            # getdents64's snapshot, made at the first call

    # ---- access checks ------------------------------------------------------------------
    def _readable(self):
        if self.flags & O_PATH or self.flags & O_ACCMODE == O_WRONLY:
            raise SysError(EBADF)
        return self.handle

    def _writable(self):
        if self.flags & O_PATH or self.flags & O_ACCMODE == O_RDONLY:
            raise SysError(EBADF)
        return self.handle

    @property
    def path(self) -> str:
        return self.loc.path

    # ---- I/O --------------------------------------------------------------------------
    def read(self, buf) -> int:
        handle = self._readable()
        n = handle.read_into(self.offset, buf)
        if not handle.stream:
            self.offset += n
        return n

    def write(self, data) -> int:
        handle = self._writable()
        if handle.stream:
            return handle.write_at(0, data)
        if self.flags & O_APPEND:
            self.offset = handle.size()
        n = handle.write_at(self.offset, data)
        self.offset += n
        return n

    def pread(self, buf, offset: int) -> int:
        handle = self._readable()
        if handle.stream:
            return handle.pread_into(offset, buf)
        return handle.read_into(offset, buf)

    def pwrite(self, data, offset: int) -> int:
        handle = self._writable()
        if handle.stream:
            return handle.pwrite_at(offset, data)
        # Linux quirk kept: with O_APPEND, pwrite appends whatever the offset
        return handle.write_at(handle.size() if self.flags & O_APPEND else offset, data)

    def lseek(self, offset: int, whence: int) -> int:
        if self.flags & O_PATH:
            raise SysError(EBADF)
        handle = self.handle
        if handle.stream:
            if not handle.seekable:
                raise SysError(ESPIPE)
            return handle.lseek(offset, whence) if hasattr(handle, "lseek") else 0
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = self.offset + offset
        elif whence == SEEK_END:
            new = handle.size() + offset
        elif whence in (SEEK_DATA, SEEK_HOLE):
            # no holes are reported: all data up to the end, one hole after it
            size = handle.size()
            if offset < 0 or offset >= size:
                raise SysError(ENXIO)
            new = offset if whence == SEEK_DATA else size
        else:
            raise SysError(EINVAL)
        if new < 0 or new > MAX_OFFSET:
            raise SysError(EINVAL)
        self.offset = new
        if new == 0:
            self.dirents = None       # rewinddir: the next getdents64 starts afresh
        return new

    def metadata(self):
        if self.handle is not None:
            return self.handle.metadata()
        return self.inode.metadata()

    def truncate(self, size: int) -> None:
        if self.flags & O_PATH:
            raise SysError(EBADF)
        if self.flags & O_ACCMODE == O_RDONLY:
            raise SysError(EINVAL)
        if self.handle.inode.metadata().is_dir:
            raise SysError(EISDIR)
        self.handle.truncate(size)

    def sync(self) -> None:
        if self.flags & O_PATH:
            raise SysError(EBADF)
        self.handle.sync()

    def mmap_data(self):
        """The file's bytes for a mapping; None when the descriptor cannot be mapped
        for reading (EACCES)."""
        if self.flags & O_PATH or self.flags & O_ACCMODE == O_WRONLY:
            return None
        return self.handle.mmap_data()

    def shared_mapping(self):
        """The write-back of a shared writable mapping of this file (mmap MAP_SHARED
        with PROT_WRITE): the file must be regular and open for reading and writing.
        None for /dev/zero, whose mapping is plain memory."""
        if self.flags & O_PATH:
            raise SysError(EBADF)
        if self.handle.anonymous:
            return None
        if self.inode.mode() & S_IFMT != S_IFREG:
            raise SysError(ENODEV)
        if self.flags & O_ACCMODE != O_RDWR:
            raise SysError(EACCES)
        return SharedMapping(self.inode, self.path)

    def release(self) -> None:
        """One descriptor less; the last one releases the handle."""
        self.refs -= 1
        if self.refs <= 0 and self.handle is not None:
            handle, self.handle = self.handle, None
            self.flags |= O_PATH        # a stale reference now fails with EBADF
            handle.release()


class SharedMapping:
    """Writes a shared mapping's pages back to its file (at msync, munmap and exit).

    The mapping is a copy made at mmap, so writes through it reach the file only then,
    and never past the file's current end (as Linux: pages beyond it are not written).
    The file is opened again for each write-back, by its inode: the mapping does not
    keep the descriptor it was made from open."""
    __slots__ = ("inode", "path")

    def __init__(self, inode, path):
        self.inode, self.path = inode, path

    def write_back(self, offset: int, data) -> None:
        try:
            handle = open_handle(self.inode, O_RDWR)
            try:
                end = min(handle.size(), offset + len(data))
                if end > offset:
                    handle.write_at(offset, memoryview(data)[:end - offset])
            finally:
                handle.release()
        except SysError as exc:
            log.warn("shared mapping of %s: writing back %d bytes at %d failed: %s",
                     self.path, len(data), offset, exc)
