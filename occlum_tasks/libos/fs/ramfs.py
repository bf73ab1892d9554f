"""ramfs: a file system in enclave memory (Occlum's RamFS), gone when the enclave ends.

Mounted where the config asks, at /dev/shm, and as the base of devfs. Inodes are
Python objects: a directory holds its children by name and its parent (for the
rename-into-itself check), a file its bytes in a bytearray.
"""
from ..errno import (EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, EXDEV, SysError)
from .vfs import (S_IFDIR, S_IFLNK, S_IFREG, FileSystem, Handle, Inode, Metadata, dtype_of, now_ns)

MAX_FILE_SIZE = 1 << 40


class RamFs(FileSystem):
    name = "ramfs"
    magic = 0x858458F6       # RAMFS_MAGIC

    def __init__(self, dev: int = 0, mode: int = 0o755):
        self.dev = dev
        self._next_ino = 1
        self._root = RamDir(self, mode, None)
        self._root.parent = self._root

    def new_ino(self) -> int:
        ino = self._next_ino
        self._next_ino += 1
        return ino

    def root(self):
        return self._root


class RamNode(Inode):
    kind = 0

    def __init__(self, fs, mode):
        self.fs = fs
        self.ino = fs.new_ino()
        self.perm = mode & 0o7777
        self.nlink = 1
        t = now_ns()
        self.atime_ns = self.mtime_ns = self.ctime_ns = t

    def size(self) -> int:
        return 0

    def metadata(self) -> Metadata:
        return Metadata(self.ino, self.kind | self.perm, self.size(), self.nlink, dev=self.fs.dev,
                        atime_ns=self.atime_ns, mtime_ns=self.mtime_ns, ctime_ns=self.ctime_ns)

    def mode(self) -> int:
        return self.kind | self.perm

    def set_mode(self, mode: int) -> None:
        self.perm = mode & 0o7777
        self.ctime_ns = now_ns()

    def set_times(self, atime_ns, mtime_ns) -> None:
        if atime_ns is not None:
            self.atime_ns = atime_ns
        if mtime_ns is not None:
            self.mtime_ns = mtime_ns
        self.ctime_ns = now_ns()

    def touch(self) -> None:
        self.mtime_ns = self.ctime_ns = now_ns()


class RamDir(RamNode):
    kind = S_IFDIR

    def __init__(self, fs, mode, parent):
        super().__init__(fs, mode)
        self.nlink = 2
        self.entries = {}
        self.parent = parent

    def size(self) -> int:
        return 4096

    def lookup(self, name):
        try:
            return self.entries[name]
        except KeyError:
            raise SysError(ENOENT) from None

    def readdir(self):
        return [(name, node.ino, dtype_of(node.kind)) for name, node in self.entries.items()]

    def add(self, name: str, node) -> None:
        """Put a node made elsewhere (devfs's devices) into this directory."""
        if name in self.entries:
            raise SysError(EEXIST)
        self.entries[name] = node
        if isinstance(node, RamDir):
            node.parent = self
            self.nlink += 1
        self.touch()

    def create(self, name, mode):
        node = RamFile(self.fs, mode)
        self.add(name, node)
        return node

    def mkdir(self, name, mode):
        node = RamDir(self.fs, mode, self)
        self.add(name, node)
        return node

    def symlink(self, name, target):
        node = RamSymlink(self.fs, target)
        self.add(name, node)
        return node

    def link(self, name, inode):
        if not isinstance(inode, RamNode) or inode.fs is not self.fs:
            raise SysError(EXDEV)
        if isinstance(inode, RamDir):
            raise SysError(EPERM)
        self.add(name, inode)
        inode.nlink += 1
        inode.ctime_ns = now_ns()

    def unlink(self, name):
        node = self.lookup(name)
        if isinstance(node, RamDir):
            raise SysError(EISDIR)
        del self.entries[name]
        node.nlink -= 1
        node.ctime_ns = now_ns()
        self.touch()

    def rmdir(self, name):
        node = self.lookup(name)
        if not isinstance(node, RamDir):
            raise SysError(ENOTDIR)
        if node.entries:
            raise SysError(ENOTEMPTY)
        del self.entries[name]
        node.nlink = 0
        self.nlink -= 1
        self.touch()

    def rename(self, old_name, new_dir, new_name):
        if not isinstance(new_dir, RamDir) or new_dir.fs is not self.fs:
            raise SysError(EXDEV)
        node = self.lookup(old_name)
        target = new_dir.entries.get(new_name)
        if target is node:
            return
        if isinstance(node, RamDir):
            cursor = new_dir          # a directory cannot move into itself
            while True:
                if cursor is node:
                    raise SysError(EINVAL)
                if cursor.parent is cursor:
                    break
                cursor = cursor.parent
        if target is not None:
            if isinstance(node, RamDir):
                if not isinstance(target, RamDir):
                    raise SysError(ENOTDIR)
                new_dir.rmdir(new_name)
            else:
                if isinstance(target, RamDir):
                    raise SysError(EISDIR)
                new_dir.unlink(new_name)
        del self.entries[old_name]
        if isinstance(node, RamDir):
            self.nlink -= 1
        new_dir.add(new_name, node)
        self.touch()


class RamFile(RamNode):
    kind = S_IFREG

    def __init__(self, fs, mode):
        super().__init__(fs, mode)
        self.data = bytearray()

    def size(self) -> int:
        return len(self.data)

    def open(self, flags):
        return RamFileHandle(self)

    def truncate(self, size):
        if size < 0 or size > MAX_FILE_SIZE:
            raise SysError(EINVAL)
        if size < len(self.data):
            del self.data[size:]
        else:
            self.data.extend(bytes(size - len(self.data)))
        self.touch()


class RamFileHandle(Handle):
    def read_into(self, offset, buf) -> int:
        data = self.inode.data
        piece = memoryview(data)[offset:offset + len(buf)]
        n = len(piece)
        buf[:n] = piece
        return n

    def write_at(self, offset, data) -> int:
        node = self.inode
        n = len(data)
        if offset + n > MAX_FILE_SIZE:
            raise SysError(EINVAL)
        if offset > len(node.data):
            node.data.extend(bytes(offset - len(node.data)))
        node.data[offset:offset + n] = data
        node.touch()
        return n

    def size(self) -> int:
        return len(self.inode.data)


class RamSymlink(RamNode):
    kind = S_IFLNK

    def __init__(self, fs, target):
        super().__init__(fs, 0o777)
        self.target = target

    def size(self) -> int:
        return len(self.target.encode())

    def readlink(self) -> str:
        return self.target
