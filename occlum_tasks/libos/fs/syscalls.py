"""File system calls on descriptors: I/O, seeking, descriptors and their flags,
getdents64, fstat, ioctl. The calls that take a path are in path_syscalls.py; this
module's SYSCALLS holds both.

Hot path (read/write/pread/pwrite): the descriptor's open file was resolved at open,
guest memory is a zero-copy view of the user space (user_mem.view, checked against the
VMAs), and the handle reads into it or writes from it directly.
"""
import struct

from .. import sched
from ..errno import EBADF, EINVAL, ENOTDIR, ENOTSUP, ENOTTY, SysError
from ..process import current
from ..syscall.args import s32, s64, u32
from ..vm import user_mem
from . import get_file, nofile_limit, path_syscalls
from .file import O_ACCMODE, O_CLOEXEC, O_NONBLOCK, O_PATH, O_RDONLY, SETFL_MASK
from .stat import pack_stat, pack_statfs
from .stdio import FIONREAD
from .vfs import DT_DIR

MAX_RW_COUNT = 0x7FFFF000     # Linux caps one read/write at this many bytes
IOV_MAX = 1024
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_GETLK, F_SETLK, F_SETLKW, F_DUPFD_CLOEXEC = 5, 6, 7, 1030
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_GETPIPE_SZ = 1032
FD_CLOEXEC = 1
F_UNLCK = 2
FIONBIO, FIONCLEX, FIOCLEX = 0x5421, 0x5450, 0x5451
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8
SENDFILE_CHUNK = 1 << 20
_DIRENT = struct.Struct("<QqHB")      # d_ino, d_off, d_reclen, d_type; then the name


def _files():
    return current.thread.process.files


# ---- I/O ----------------------------------------------------------------------------------
def sys_read(fd, buf, count):
    file = get_file(s32(fd))
    return file.read(user_mem.view(buf, min(count, MAX_RW_COUNT), writable=True))


def sys_write(fd, buf, count):
    file = get_file(s32(fd))
    return file.write(user_mem.view(buf, min(count, MAX_RW_COUNT)))


def _iovecs(iov, iovcnt):
    iovcnt = s32(iovcnt)
    if iovcnt < 0 or iovcnt > IOV_MAX:
        raise SysError(EINVAL)
    raw = user_mem.read(iov, 16 * iovcnt)
    pairs = [struct.unpack_from("<QQ", raw, 16 * i) for i in range(iovcnt)]
    total = 0
    for _base, length in pairs:
        total += length
        if length > MAX_RW_COUNT or total > MAX_RW_COUNT:
            raise SysError(EINVAL)
    return pairs


def sys_writev(fd, iov, iovcnt):
    file = get_file(s32(fd))
    views = [user_mem.view(base, length) for base, length in _iovecs(iov, iovcnt) if length]
    if not views:
        return 0
    # one write for the whole vector, so that a line made of pieces is not torn
    return file.write(views[0] if len(views) == 1 else b"".join(views))


def sys_readv(fd, iov, iovcnt):
    file = get_file(s32(fd))
    views = [user_mem.view(base, length, writable=True) for base, length in _iovecs(iov, iovcnt) if length]
    total = 0
    for view in views:
        try:
            n = file.read(view)
        except sched.Block:
            if total:
                break       # what was read is returned; waiting would lose it on the re-run
            raise
        total += n
        if n < len(view):
            break           # a short read: what follows would block or is past the end
    return total


def _offset(offset):
    offset = s64(offset)
    if offset < 0:
        raise SysError(EINVAL)
    return offset


def sys_pread64(fd, buf, count, offset):
    file = get_file(s32(fd))
    return file.pread(user_mem.view(buf, min(count, MAX_RW_COUNT), writable=True), _offset(offset))


def sys_pwrite64(fd, buf, count, offset):
    file = get_file(s32(fd))
    return file.pwrite(user_mem.view(buf, min(count, MAX_RW_COUNT)), _offset(offset))


def sys_lseek(fd, offset, whence):
    return get_file(s32(fd)).lseek(s64(offset), u32(whence))


def sys_ftruncate(fd, length):
    length = s64(length)
    if length < 0:
        raise SysError(EINVAL)
    get_file(s32(fd)).truncate(length)
    return 0


def sys_fsync(fd):
    get_file(s32(fd)).sync()
    return 0


def sys_sync():
    from . import sync_all
    sync_all()
    return 0


def sys_syncfs(fd):
    get_file(s32(fd))
    return sys_sync()


def sys_fstatfs(fd, buf):
    file = get_file(s32(fd))
    user_mem.write(buf, pack_statfs(file.inode.fs))
    return 0


def sys_flock(fd, operation):
    get_file(s32(fd))
    if u32(operation) & ~LOCK_NB not in (LOCK_SH, LOCK_EX, LOCK_UN):
        raise SysError(EINVAL)
    return 0        # one enclave holds every lock there is: any lock could be taken


def sys_fadvise64(fd, offset, length, advice):
    get_file(s32(fd))
    if not 0 <= s32(advice) <= 5:
        raise SysError(EINVAL)
    return 0        # advice about the page cache: there is none to tune


def sys_fallocate(fd, mode, offset, length):
    file = get_file(s32(fd))
    offset, length = s64(offset), s64(length)
    if u32(mode):
        raise SysError(ENOTSUP)     # only plain allocation: holes and ranges are not offered
    if offset < 0 or length <= 0:
        raise SysError(EINVAL)
    if file.flags & O_PATH or file.flags & O_ACCMODE == O_RDONLY:
        raise SysError(EBADF)
    if offset + length > file.handle.size():
        file.truncate(offset + length)
    return 0


def sys_sendfile(out_fd, in_fd, offset_ptr, count):
    out_file, in_file = get_file(s32(out_fd)), get_file(s32(in_fd))
    count = min(count, MAX_RW_COUNT)
    offset = user_mem.read_struct("<q", offset_ptr)[0] if offset_ptr else None
    if offset is not None and offset < 0:
        raise SysError(EINVAL)
    done = 0
    buf = bytearray(min(count, SENDFILE_CHUNK))
    while done < count:
        view = memoryview(buf)[:min(len(buf), count - done)]
        try:
            n = in_file.read(view) if offset is None else in_file.pread(view, offset + done)
        except sched.Block:
            if done:
                break       # a pipe ran dry: return what was sent rather than wait
            raise
        if n == 0:
            break
        written = out_file.write(view[:n])
        done += written
        if written < n:
            if offset is None:
                in_file.lseek(written - n, 1)    # give back what was not sent
            break
    if offset_ptr:
        user_mem.write_struct("<q", offset_ptr, offset + done)
    return done


def sys_fstat(fd, statbuf):
    user_mem.write(statbuf, pack_stat(get_file(s32(fd)).metadata()))
    return 0


def sys_close(fd):
    _files().close(s32(fd))
    return 0


# ---- descriptors ----------------------------------------------------------------------------
def sys_dup(oldfd):
    files = _files()
    return files.put(files.get(s32(oldfd)), limit=nofile_limit())


def sys_dup2(oldfd, newfd):
    oldfd, newfd = s32(oldfd), s32(newfd)
    files = _files()
    file = files.get(oldfd)
    if oldfd == newfd:
        return newfd
    files.put_at(newfd, file, limit=nofile_limit())
    return newfd


def sys_dup3(oldfd, newfd, flags):
    oldfd, newfd, flags = s32(oldfd), s32(newfd), u32(flags)
    if flags & ~O_CLOEXEC or oldfd == newfd:
        raise SysError(EINVAL)
    files = _files()
    files.put_at(newfd, files.get(oldfd), cloexec=bool(flags & O_CLOEXEC), limit=nofile_limit())
    return newfd


def sys_fcntl(fd, cmd, arg):
    fd, cmd = s32(fd), s32(cmd)
    files = _files()
    file = files.get(fd)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        minimum, limit = s32(arg), nofile_limit()
        if minimum < 0 or minimum >= limit:
            raise SysError(EINVAL)
        return files.put(file, cloexec=cmd == F_DUPFD_CLOEXEC, minimum=minimum, limit=limit)
    if cmd == F_GETFD:
        return FD_CLOEXEC if files.get_cloexec(fd) else 0
    if cmd == F_SETFD:
        files.set_cloexec(fd, bool(arg & FD_CLOEXEC))
        return 0
    if cmd == F_GETFL:
        return file.flags
    if cmd == F_SETFL:
        if file.flags & O_PATH:
            raise SysError(EBADF)
        file.flags = (file.flags & ~SETFL_MASK) | (u32(arg) & SETFL_MASK)
        return 0
    if cmd in (F_GETLK, F_OFD_GETLK):
        # one process holds every lock there is: any lock could be taken
        user_mem.write_struct("<h", arg, F_UNLCK)
        return 0
    if cmd in (F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW):
        user_mem.read(arg, 32)        # struct flock must be readable
        return 0
    raise SysError(EINVAL)


def sys_ioctl(fd, request, arg):
    fd, request = s32(fd), u32(request)
    files = _files()
    file = files.get(fd)
    if file.flags & O_PATH:
        raise SysError(EBADF)
    if request == FIONBIO:
        on = user_mem.read_struct("<i", arg)[0]
        file.flags = file.flags | O_NONBLOCK if on else file.flags & ~O_NONBLOCK
        return 0
    if request in (FIOCLEX, FIONCLEX):
        files.set_cloexec(fd, request == FIOCLEX)
        return 0
    handle = file.handle
    if request == FIONREAD:
        if file.inode.mode() & 0o170000 == 0o040000:
            raise SysError(ENOTTY)
        user_mem.write_struct("<i", arg, min(handle.ioctl_nread(file.offset), 0x7FFFFFFF))
        return 0
    query = getattr(handle, "ioctl", None)
    if query is None:
        raise SysError(ENOTTY)
    user_mem.write(arg, query(request))
    return 0


# ---- directories ----------------------------------------------------------------------------
def _snapshot(file):
    """The directory's records when reading starts: ".", "..", its entries and the
    mount points in it."""
    from . import current_vfs
    vfs, loc = current_vfs(), file.loc
    parent = vfs.parent(loc)
    records = [(".", loc.inode.metadata().ino, DT_DIR), ("..", parent.inode.metadata().ino, DT_DIR)]
    records += loc.inode.readdir()
    present = {r[0] for r in records}
    for name in vfs.mounts_under(loc.names):
        if name not in present:
            records.append((name, vfs.child(loc, name).inode.metadata().ino, DT_DIR))
    return records


def sys_getdents64(fd, dirp, count):
    file = get_file(s32(fd))
    if file.flags & O_PATH:
        raise SysError(EBADF)
    if not file.inode.metadata().is_dir:
        raise SysError(ENOTDIR)
    count = min(u32(count), MAX_RW_COUNT)
    dest = user_mem.view(dirp, count, writable=True)
    if file.dirents is None or file.offset == 0:
        file.dirents = _snapshot(file)
    records, index, used = file.dirents, file.offset, 0
    out = bytearray()
    while index < len(records):
        name, ino, dtype = records[index]
        raw = name.encode("utf-8", "surrogateescape")
        reclen = (_DIRENT.size + len(raw) + 1 + 7) & ~7
        if used + reclen > count:
            if used == 0:
                raise SysError(EINVAL)      # the buffer cannot hold one record
            break
        out += _DIRENT.pack(ino, index + 1, reclen, dtype) + raw
        out += bytes(reclen - _DIRENT.size - len(raw))
        used += reclen
        index += 1
    dest[:used] = out
    file.offset = index
    return used


SYSCALLS = {
    "read": sys_read, "write": sys_write, "readv": sys_readv, "writev": sys_writev,
    "pread64": sys_pread64, "pwrite64": sys_pwrite64, "lseek": sys_lseek,
    "ioctl": sys_ioctl, "fstat": sys_fstat, "close": sys_close,
    "ftruncate": sys_ftruncate, "fsync": sys_fsync, "fdatasync": sys_fsync,
    "sync": sys_sync, "syncfs": sys_syncfs,
    "dup": sys_dup, "dup2": sys_dup2, "dup3": sys_dup3, "fcntl": sys_fcntl,
    "getdents64": sys_getdents64, "fstatfs": sys_fstatfs, "flock": sys_flock,
    "fadvise64": sys_fadvise64, "fallocate": sys_fallocate, "sendfile": sys_sendfile,
    **path_syscalls.SYSCALLS,
}
