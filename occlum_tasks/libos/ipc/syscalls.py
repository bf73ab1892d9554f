"""The ipc subsystem's calls: pipe, pipe2, and the readiness waits (poll.py)."""
from .. import log
from ..errno import EINVAL, SysError
from ..fs.file import O_CLOEXEC, O_DIRECT, O_NONBLOCK
from ..process import current
from ..vm import user_mem
from ..syscall.lazy import lazy


def sys_pipe2(fds_ptr, flags):
    from .. import fs
    flags &= 0xFFFFFFFF
    if flags & O_DIRECT:
        log.warn_once("pipe2 O_DIRECT", "pipe2(O_DIRECT): packet-mode pipes are not supported: EINVAL")
        raise SysError(EINVAL)
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SysError(EINVAL)
    user_mem.view(fds_ptr, 8, writable=True)       # EFAULT before anything is created
    files = current.thread.process.files
    from .pipe import new_pipe
    read_end, write_end = new_pipe(bool(flags & O_NONBLOCK))
    cloexec, limit = bool(flags & O_CLOEXEC), fs.nofile_limit()
    rfd = files.put(read_end, cloexec=cloexec, limit=limit)
    try:
        wfd = files.put(write_end, cloexec=cloexec, limit=limit)
    except SysError:
        files.close(rfd)
        write_end.refs += 1
        write_end.release()
        raise
    user_mem.write_struct("<ii", fds_ptr, rfd, wfd)
    return 0


def sys_pipe(fds_ptr):
    return sys_pipe2(fds_ptr, 0)


# pipe.py and poll.py are imported at their first use (as process/syscalls.py does for
# clone & co.): a program that never calls them does not pay for compiling them
sys_poll = lazy("occlum_tasks.libos.ipc.poll", "sys_poll", 3)
sys_ppoll = lazy("occlum_tasks.libos.ipc.poll", "sys_ppoll", 5)
sys_select = lazy("occlum_tasks.libos.ipc.poll", "sys_select", 5)
sys_pselect6 = lazy("occlum_tasks.libos.ipc.poll", "sys_pselect6", 6)


SYSCALLS = {"pipe": sys_pipe, "pipe2": sys_pipe2, "poll": sys_poll, "ppoll": sys_ppoll,
            "select": sys_select, "pselect6": sys_pselect6}
