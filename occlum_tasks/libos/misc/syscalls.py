"""uname and getrandom."""
import os
import socket

from ..errno import EINVAL, SysError
from ..syscall.args import u32
from ..vm import user_mem

GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4
_UTS_FIELD = 65


def _utsname() -> bytes:
    fields = ("Linux", socket.gethostname(), "5.15.0-occlum", "#1 SMP occlum-py", "x86_64", "(none)")
    return b"".join(f.encode()[:_UTS_FIELD - 1].ljust(_UTS_FIELD, b"\0") for f in fields)


def sys_uname(buf):
    user_mem.write(buf, _utsname())
    return 0


def sys_getrandom(buf, length, flags):
    if u32(flags) & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE):
        raise SysError(EINVAL)
    length = min(length, 33554431)      # Linux returns at most this much per call
    dest = user_mem.view(buf, length, writable=True)
    dest[:] = os.urandom(length)
    return length


SYSCALLS = {"uname": sys_uname, "getrandom": sys_getrandom}
