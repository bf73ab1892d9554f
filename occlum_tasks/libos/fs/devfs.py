"""devfs at /dev (Occlum's DevFS): a ramfs holding the devices.

null, zero, random, urandom, arandom (Occlum's name for a source that is always
random), full; stdin, stdout, stderr and fd as links into /proc/self/fd, as on Linux;
shm, a ramfs directory for POSIX shared memory files.
"""
import os

from ..errno import ENODEV, ENOSPC, SysError
from .ramfs import RamFs, RamNode
from .vfs import S_IFCHR, Handle

# (name, major, minor) as on Linux
_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
            ("urandom", 1, 9), ("arandom", 1, 9))


def makedev(major: int, minor: int) -> int:
    return (major << 8) | minor


class DeviceNode(RamNode):
    kind = S_IFCHR

    def __init__(self, fs, name, major, minor):
        super().__init__(fs, 0o666)
        self.name, self.rdev = name, makedev(major, minor)

    def metadata(self):
        meta = super().metadata()
        meta.rdev = self.rdev
        return meta

    def open(self, flags):
        return DeviceHandle(self)

    def truncate(self, size):
        pass       # O_TRUNC on a device does nothing


class DeviceHandle(Handle):
    """Character devices: no offset to keep, any position reads the same."""
    stream = True
    seekable = True

    def __init__(self, inode):
        super().__init__(inode)
        self.name = inode.name
        self.anonymous = self.name == "zero"

    def read_into(self, offset, buf) -> int:
        name = self.name
        if name == "null":
            return 0
        n = len(buf)
        if name in ("zero", "full"):
            buf[:] = bytes(n)
        else:
            buf[:] = os.urandom(n)
        return n

    def write_at(self, offset, data) -> int:
        if self.name == "full":
            raise SysError(ENOSPC)
        return len(data)          # null, zero and the random sources drop what is written

    pread_into = read_into
    pwrite_at = write_at

    def size(self) -> int:
        return 0

    def ioctl_nread(self, offset) -> int:
        return 0

    def mmap_data(self) -> bytes:
        if self.name == "zero":
            return b""           # a private mapping of /dev/zero is anonymous memory
        raise SysError(ENODEV)


def new_devfs(dev: int) -> RamFs:
    fs = RamFs(dev)
    fs.name, fs.magic = "devfs", 0x01021994      # devtmpfs says TMPFS_MAGIC
    root = fs.root()
    for name, major, minor in _DEVICES:
        root.add(name, DeviceNode(fs, name, major, minor))
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        root.symlink(name, "/proc/self/fd/%d" % i)
    root.symlink("fd", "/proc/self/fd")
    root.mkdir("shm", 0o1777)
    return fs
