"""The run's standard streams: guest descriptors 0, 1 and 2 on host descriptors of the
run (the terminal, a pipe or a file). Closing a guest descriptor never closes the
host's; terminal queries (TCGETS, TIOCGWINSZ...) are answered by the host's terminal,
so a program sees ENOTTY exactly when its stream is not a terminal.
"""
import fcntl
import os
import select

from .. import sched
from ..errno import EINVAL, ENOTTY, ESPIPE, SysError
from .vfs import Handle, Inode, Metadata

TCGETS, TIOCGWINSZ, TIOCGPGRP, FIONREAD = 0x5401, 0x5413, 0x540F, 0x541B
# read-only terminal queries passed to the host: request -> result size
HOST_IOCTLS = {TCGETS: 36, TIOCGWINSZ: 8, TIOCGPGRP: 4}
NAMES = ("stdin", "stdout", "stderr")


def host_read(host_fd: int, buf) -> int:
    """The one place the LibOS waits for host input (stdin). A thread alone in the
    enclave reads directly; otherwise, with no input ready, it parks and the scheduler
    selects on the descriptor while the other threads run."""
    if not sched.alone():
        try:
            ready = select.select([host_fd], [], [], 0)[0]
        except (OSError, ValueError):
            ready = True          # let the read report the error
        if not ready:
            raise sched.Block(host_read=(host_fd,), what="host input on descriptor %d" % host_fd)
    try:
        return os.readv(host_fd, [buf])
    except OSError as exc:
        raise SysError(exc.errno or EINVAL) from None


class HostStdioInode(Inode):
    def __init__(self, host_fd: int, index: int):
        self.host_fd, self.index = host_fd, index

    @property
    def label(self) -> str:
        """What /proc/<pid>/fd/N shows for it."""
        return "host:[%s]" % NAMES[self.index] if self.index < 3 else "host:[fd %d]" % self.host_fd

    def metadata(self) -> Metadata:
        try:
            s = os.fstat(self.host_fd)
        except OSError as exc:
            raise SysError(exc.errno or EINVAL) from None
        return Metadata(s.st_ino, s.st_mode, s.st_size, s.st_nlink, dev=s.st_dev, rdev=s.st_rdev,
                        atime_ns=s.st_atime_ns, mtime_ns=s.st_mtime_ns, ctime_ns=s.st_ctime_ns)

    def open(self, flags):
        return HostStdioHandle(self)


class HostStdioHandle(Handle):
    stream = True

    def __init__(self, inode):
        super().__init__(inode)
        self.host_fd = inode.host_fd
        try:
            os.lseek(self.host_fd, 0, os.SEEK_CUR)
            self.seekable = True        # a host file: lseek and pread work on it
        except OSError:
            self.seekable = False

    def _call(self, fn, *args):
        try:
            return fn(self.host_fd, *args)
        except OSError as exc:
            raise SysError(exc.errno or EINVAL) from None

    def read_into(self, offset, buf) -> int:
        return host_read(self.host_fd, buf)

    def write_at(self, offset, data) -> int:
        return self._call(os.write, data)

    def pread_into(self, offset, buf) -> int:
        if not self.seekable:
            raise SysError(ESPIPE)
        return self._call(os.preadv, [buf], offset)

    def pwrite_at(self, offset, data) -> int:
        if not self.seekable:
            raise SysError(ESPIPE)
        return self._call(os.pwrite, data, offset)

    def lseek(self, offset, whence) -> int:
        return self._call(os.lseek, offset, whence)

    def size(self) -> int:
        return self.inode.metadata().size

    def ioctl(self, request: int) -> bytes:
        size = HOST_IOCTLS.get(request)
        if size is None:
            raise SysError(ENOTTY)
        return bytes(self._call(fcntl.ioctl, request, bytes(size)))

    def ioctl_nread(self, offset) -> int:
        return int.from_bytes(self._call(fcntl.ioctl, FIONREAD, bytes(4)), "little")

    def mmap_data(self) -> bytes:
        from ..errno import ENODEV
        raise SysError(ENODEV)     # a stream cannot be mapped
