"""struct stat, struct statx and struct statfs as the x86-64 ABI lays them out."""
import struct

_STAT = struct.Struct("<QQQIIIiQqqqqqqqqq24x")            # 144 bytes
_STATX_HEAD = struct.Struct("<IIQIIIHxxQQQQ")               # up to stx_attributes_mask
_STATX_TIME = struct.Struct("<qIi")
_STATX_TAIL = struct.Struct("<IIIIQ")
STATX_SIZE = 256
STATX_BASIC_STATS = 0x7FF      # type, mode, nlink, uid, gid, atime, mtime, ctime, ino, size, blocks


def pack_stat(m) -> bytes:
    return _STAT.pack(m.dev, m.ino, m.nlink, m.mode, m.uid, m.gid, 0, m.rdev, m.size, m.blksize,
                      m.blocks, m.atime_ns // 10**9, m.atime_ns % 10**9, m.mtime_ns // 10**9,
                      m.mtime_ns % 10**9, m.ctime_ns // 10**9, m.ctime_ns % 10**9)


def _major_minor(dev):
    return (dev >> 8) & 0xFFF, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


def pack_statx(m) -> bytes:
    times = b"".join(_STATX_TIME.pack(t // 10**9, t % 10**9, 0)
                     for t in (m.atime_ns, 0, m.ctime_ns, m.mtime_ns))   # atime btime ctime mtime
    rdev, dev = _major_minor(m.rdev), _major_minor(m.dev)
    data = (_STATX_HEAD.pack(STATX_BASIC_STATS, m.blksize, 0, m.nlink, m.uid, m.gid, m.mode & 0xFFFF,
                             m.ino, m.size, m.blocks, 0)
            + times + _STATX_TAIL.pack(rdev[0], rdev[1], dev[0], dev[1], 0))
    return data.ljust(STATX_SIZE, b"\0")


_STATFS = struct.Struct("<qqQQQQQiiqqq32x")               # 120 bytes
ST_RDONLY = 1


def pack_statfs(fs) -> bytes:
    """What statfs(2) says of a mounted file system (its `statfs()` numbers)."""
    blocks, bfree, bavail, files, ffree = fs.statfs()
    return _STATFS.pack(fs.magic, 4096, blocks, bfree, bavail, files, ffree, fs.dev, 0, 255, 4096,
                        ST_RDONLY if fs.read_only else 0)
