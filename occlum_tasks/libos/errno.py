"""Linux errno numbers (x86-64) and the exception a system call raises to fail.

A handler either returns an int (>= 0 success, -errno failure) or raises SysError;
the dispatcher turns SysError into -errno without logging it as a LibOS error.
"""
EPERM = 1
ENOENT = 2
ESRCH = 3
EINTR = 4
EIO = 5
ENXIO = 6
E2BIG = 7
ENOEXEC = 8
EBADF = 9
ECHILD = 10
EAGAIN = 11
ENOMEM = 12
EACCES = 13
EFAULT = 14
EBUSY = 16
EEXIST = 17
EXDEV = 18
ENODEV = 19
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ENFILE = 23
EMFILE = 24
ENOTTY = 25
ETXTBSY = 26
EFBIG = 27
ENOSPC = 28
ESPIPE = 29
EROFS = 30
EMLINK = 31
EPIPE = 32
ERANGE = 34
ENAMETOOLONG = 36
ENOSYS = 38
ENOTEMPTY = 39
ELOOP = 40
ENOTSUP = 95
EOVERFLOW = 75
ETIMEDOUT = 110

NAMES = {v: k for k, v in globals().items() if k.startswith("E") and isinstance(v, int)}


class SysError(Exception):
    """Fail the current system call with this errno (a normal outcome, not a bug)."""

    __slots__ = ("errno",)

    def __init__(self, errno: int):
        super().__init__(errno)
        self.errno = errno

    def __str__(self):
        return NAMES.get(self.errno, str(self.errno))
