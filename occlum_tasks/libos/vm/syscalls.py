"""Memory system calls: brk, mmap, munmap, mprotect, mremap, madvise, msync."""
from ..errno import EACCES, EINVAL, SysError
from ..process import current
from ..syscall.args import s32, s64
from .process_vm import MAP_ANONYMOUS, MAP_PRIVATE, MAP_TYPE, PROT_WRITE


def _vm():
    return current.thread.process.vm


def sys_brk(addr):
    return _vm().do_brk(addr)


def sys_mmap(addr, length, prot, flags, fd, offset):
    prot, flags = prot & 0xFFFFFFFF, flags & 0xFFFFFFFF
    file_data, name, shared = None, "", None
    if not flags & MAP_ANONYMOUS:
        from .. import fs     # the file system is above memory; resolved at call time
        if s64(offset) < 0:
            raise SysError(EINVAL)
        file = fs.get_file(s32(fd))
        if flags & MAP_TYPE != MAP_PRIVATE and prot & PROT_WRITE:
            # the pages are copied in now and written back at msync, munmap and exit
            shared = file.shared_mapping()
        file_data = file.mmap_data()
        if file_data is None:
            raise SysError(EACCES)
        name = file.path
    return _vm().do_mmap(addr, length, prot, flags, file_data, offset, name, shared)


def sys_munmap(addr, length):
    return _vm().do_munmap(addr, length)


def sys_mprotect(addr, length, prot):
    return _vm().do_mprotect(addr, length, prot & 0xFFFFFFFF)


def sys_mremap(old_addr, old_size, new_size, flags, new_addr):
    return _vm().do_mremap(old_addr, old_size, new_size, flags & 0xFFFFFFFF, new_addr)


def sys_madvise(addr, length, advice):
    return _vm().do_madvise(addr, length, s32(advice))


MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4


def sys_msync(addr, length, flags):
    flags = s32(flags)
    if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) or (flags & MS_ASYNC and flags & MS_SYNC):
        raise SysError(EINVAL)
    return _vm().do_msync(addr, length)


SYSCALLS = {
    "brk": sys_brk, "mmap": sys_mmap, "munmap": sys_munmap, "mprotect": sys_mprotect,
    "mremap": sys_mremap, "madvise": sys_madvise, "msync": sys_msync,
}
