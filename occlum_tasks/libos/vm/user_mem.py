"""Access to the current process's memory from system call handlers.

Every guest pointer is checked against the process's VMAs and their permissions
(EFAULT otherwise) before the host touches the memory through the user space's
memoryview; Unicorn is not involved, so these calls cost no more than a slice.
"""
import struct

from ..errno import ENAMETOOLONG, SysError
from ..process import current
from . import space as _space_of

PROT_READ, PROT_WRITE = 1, 2


def _vm():
    return current.thread.process.vm


def read(addr: int, size: int) -> bytes:
    _vm().check(addr, size, PROT_READ)
    space = _space_of()
    off = addr - space.base
    return space.mem[off:off + size].tobytes()


def view(addr: int, size: int, writable: bool = False) -> memoryview:
    """Zero-copy window on guest memory (for read(2)/write(2)); do not keep it."""
    vm = _vm()
    if writable:
        vm.check_write(addr, size)
    else:
        vm.check(addr, size, PROT_READ)
    space = _space_of()
    off = addr - space.base
    return space.mem[off:off + size]


def write(addr: int, data) -> None:
    _vm().check_write(addr, len(data))
    space = _space_of()
    off = addr - space.base
    space.mem[off:off + len(data)] = data


def read_struct(fmt: str, addr: int):
    return struct.unpack(fmt, read(addr, struct.calcsize(fmt)))


def write_struct(fmt: str, addr: int, *values) -> None:
    write(addr, struct.pack(fmt, *values))


def read_cstring(addr: int, limit: int = 4096) -> bytes:
    """A NUL-terminated string of fewer than `limit` bytes (ENAMETOOLONG otherwise)."""
    vm = _vm()
    space = _space_of()
    out = bytearray()
    while len(out) < limit:
        # read up to the end of the page, so that a check never crosses into a hole
        chunk = min(4096 - (addr + len(out)) % 4096, limit - len(out))
        start = addr + len(out)
        vm.check(start, chunk, PROT_READ)
        data = space.mem[start - space.base:start - space.base + chunk]
        nul = bytes(data).find(b"\0")
        if nul >= 0:
            out += data[:nul]
            return bytes(out)
        out += data
    raise SysError(ENAMETOOLONG)


def is_guest_memory(view) -> bool:
    """Whether `view` is a window on guest memory (from `view`), not a LibOS buffer:
    a pipe may then fill it for a blocked reader directly."""
    return isinstance(view, memoryview) and view.obj is _space_of().mem.obj
