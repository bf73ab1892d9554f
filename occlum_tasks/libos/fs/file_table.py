"""A process's file descriptor table, and the one kind of file there is so far: the
run's standard streams, bound to host file descriptors (0, 1, 2 unless the caller
passes others). Closing a guest descriptor never closes the host's.
"""
import fcntl
import os

from ..errno import EBADF, EINVAL, ENODEV, ENOTTY, SysError

TCGETS, TIOCGWINSZ, TIOCGPGRP, FIONREAD = 0x5401, 0x5413, 0x540F, 0x541B
# read-only terminal queries passed to the host terminal: (request, result size)
_HOST_IOCTLS = {TCGETS: 36, TIOCGWINSZ: 8, TIOCGPGRP: 4, FIONREAD: 4}
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2


class HostStdio:
    """A guest file on a host descriptor of the run (the terminal, a pipe or a file)."""

    def __init__(self, host_fd: int, access: int):
        self.host_fd, self.access = host_fd, access

    def _host_call(self, fn, *args):
        try:
            return fn(self.host_fd, *args)
        except OSError as exc:
            raise SysError(exc.errno or EINVAL) from None

    def read(self, size: int) -> bytes:
        if self.access == O_WRONLY:
            raise SysError(EBADF)
        return self._host_call(os.read, size)

    def write(self, data) -> int:
        if self.access == O_RDONLY:
            raise SysError(EBADF)
        return self._host_call(os.write, data)

    def pread(self, size: int, offset: int) -> bytes:
        if self.access == O_WRONLY:
            raise SysError(EBADF)
        return self._host_call(os.pread, size, offset)

    def pwrite(self, data, offset: int) -> int:
        if self.access == O_RDONLY:
            raise SysError(EBADF)
        return self._host_call(os.pwrite, data, offset)

    def lseek(self, offset: int, whence: int) -> int:
        return self._host_call(os.lseek, offset, whence)

    def stat(self) -> os.stat_result:
        return self._host_call(os.fstat)

    def ioctl(self, request: int) -> bytes:
        """Result bytes of a supported terminal query; ENOTTY for anything else."""
        size = _HOST_IOCTLS.get(request)
        if size is None:
            raise SysError(ENOTTY)
        return bytes(self._host_call(fcntl.ioctl, request, bytes(size)))

    def mmap_data(self) -> bytes:
        raise SysError(ENODEV)   # a stream cannot be mapped

    def close(self) -> None:
        pass     # the host's descriptor belongs to the run, not to the guest


class FileTable:
    def __init__(self, stdio=(0, 1, 2)):
        self._files = {0: HostStdio(stdio[0], O_RDONLY), 1: HostStdio(stdio[1], O_WRONLY),
                       2: HostStdio(stdio[2], O_WRONLY)}

    def get(self, fd: int):
        try:
            return self._files[fd]
        except KeyError:
            raise SysError(EBADF) from None

    def close(self, fd: int) -> None:
        self.get(fd).close()
        del self._files[fd]

    def close_all(self) -> None:
        for fd in list(self._files):
            self.close(fd)

    def __contains__(self, fd):
        return fd in self._files

