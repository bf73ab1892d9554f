"""File system calls on the file table (stdio for now)."""
import struct

from ..errno import EINVAL, SysError
from ..process import current
from ..syscall.args import s32, s64, u32
from ..vm import user_mem
from . import get_file

MAX_RW_COUNT = 0x7FFFF000     # Linux caps one read/write at this many bytes
IOV_MAX = 1024
_STAT = struct.Struct("<QQQIIIiQqqqqqqqqq24x")   # struct stat, x86-64: 144 bytes


def sys_read(fd, buf, count):
    file = get_file(s32(fd))
    count = min(count, MAX_RW_COUNT)
    dest = user_mem.view(buf, count, writable=True)
    data = file.read(count)
    dest[:len(data)] = data
    return len(data)


def sys_write(fd, buf, count):
    file = get_file(s32(fd))
    count = min(count, MAX_RW_COUNT)
    return file.write(user_mem.view(buf, count))


def _iovecs(iov, iovcnt):
    iovcnt = s32(iovcnt)
    if iovcnt < 0 or iovcnt > IOV_MAX:
        raise SysError(EINVAL)
    raw = user_mem.read(iov, 16 * iovcnt)
    pairs = [struct.unpack_from("<QQ", raw, 16 * i) for i in range(iovcnt)]
    if sum(length for _base, length in pairs) > MAX_RW_COUNT:
        raise SysError(EINVAL)
    return pairs


def sys_writev(fd, iov, iovcnt):
    file = get_file(s32(fd))
    pairs = _iovecs(iov, iovcnt)
    # one host write for the whole vector, so that lines are not torn
    data = b"".join(user_mem.view(base, length) for base, length in pairs if length)
    return file.write(data) if data else 0


def sys_readv(fd, iov, iovcnt):
    file = get_file(s32(fd))
    pairs = _iovecs(iov, iovcnt)
    views = [user_mem.view(base, length, writable=True) for base, length in pairs if length]
    data = file.read(sum(len(v) for v in views)) if views else b""
    offset = 0
    for view in views:
        piece = data[offset:offset + len(view)]
        view[:len(piece)] = piece
        offset += len(piece)
    return len(data)


def sys_pread64(fd, buf, count, offset):
    file = get_file(s32(fd))
    if s64(offset) < 0:
        raise SysError(EINVAL)
    dest = user_mem.view(buf, min(count, MAX_RW_COUNT), writable=True)
    data = file.pread(len(dest), offset)
    dest[:len(data)] = data
    return len(data)


def sys_pwrite64(fd, buf, count, offset):
    file = get_file(s32(fd))
    if s64(offset) < 0:
        raise SysError(EINVAL)
    return file.pwrite(user_mem.view(buf, min(count, MAX_RW_COUNT)), offset)


def sys_lseek(fd, offset, whence):
    return get_file(s32(fd)).lseek(s64(offset), u32(whence))


def sys_ioctl(fd, request, arg):
    file = get_file(s32(fd))
    result = file.ioctl(u32(request))
    user_mem.write(arg, result)
    return 0


def sys_fstat(fd, statbuf):
    st = get_file(s32(fd)).stat()
    user_mem.write(statbuf, _STAT.pack(
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0, st.st_rdev,
        st.st_size, st.st_blksize, st.st_blocks,
        int(st.st_atime), st.st_atime_ns % 10**9, int(st.st_mtime), st.st_mtime_ns % 10**9,
        int(st.st_ctime), st.st_ctime_ns % 10**9))
    return 0


def sys_close(fd):
    current.thread.process.files.close(s32(fd))
    return 0


SYSCALLS = {
    "read": sys_read, "write": sys_write, "readv": sys_readv, "writev": sys_writev,
    "pread64": sys_pread64, "pwrite64": sys_pwrite64, "lseek": sys_lseek,
    "ioctl": sys_ioctl, "fstat": sys_fstat, "close": sys_close,
}
