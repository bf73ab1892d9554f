"""File system calls that take a path: open, stat, directories, links, names,
attributes, the working directory and the umask.

Every *at call resolves its path from `dirfd` (AT_FDCWD: the process's working
directory); the plain calls are the *at call with AT_FDCWD. Paths are read from guest
memory with a bound (ENAMETOOLONG) and decoded as the layers store names (UTF-8, odd
bytes kept by surrogateescape).
"""
import struct

from ..errno import (EBADF, EBUSY, EEXIST, EFAULT, EINVAL, EISDIR, ELOOP, ENOENT, ENOTDIR, ENOTEMPTY,
                     ENOTSUP, EPERM, ERANGE, EROFS, EXDEV, SysError)
from ..process import current
from ..syscall.args import s32, s64, u32
from ..vm import user_mem
from . import current_vfs, nofile_limit
from .file import (O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH, O_RDONLY,
                   O_TMPFILE, O_TRUNC, O_WRONLY, OpenFile)
from .path import PATH_MAX, Loc
from .stat import pack_stat, pack_statfs, pack_statx
from .vfs import S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, now_ns

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW = 0x100, 0x200, 0x400
AT_NO_AUTOMOUNT, AT_EMPTY_PATH, AT_EACCESS = 0x800, 0x1000, 0x200
AT_STATX_SYNC_TYPE = 0x6000
F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def _view():
    return current.thread.process.fs


def _path(ptr) -> str:
    if ptr == 0:
        raise SysError(EFAULT)
    return user_mem.read_cstring(ptr, PATH_MAX).decode("utf-8", "surrogateescape")


def _start(dirfd) -> Loc:
    """Where a relative path starts: the cwd, or the directory `dirfd` is open on."""
    dirfd = s32(dirfd)
    if dirfd == AT_FDCWD:
        return _view().cwd
    from . import get_file
    file = get_file(dirfd)
    return file.loc


def _dir_start(dirfd, path) -> Loc:
    """_start for a relative path (the descriptor must be a directory); absolute paths
    ignore dirfd, as Linux does."""
    if path.startswith("/"):
        return current_vfs().root
    loc = _start(dirfd)
    if s32(dirfd) != AT_FDCWD and loc.inode.mode() & S_IFMT != S_IFDIR:
        raise SysError(ENOTDIR)
    return loc


def _lookup(dirfd, path_ptr, flags, allowed):
    """The location a (dirfd, path, flags) triple names, for the stat-like calls; an
    empty path with AT_EMPTY_PATH names the descriptor itself."""
    flags = u32(flags)
    if flags & ~allowed:
        raise SysError(EINVAL)
    path = _path(path_ptr)
    if not path:
        if not flags & AT_EMPTY_PATH:
            raise SysError(ENOENT)
        return _start(dirfd)
    return current_vfs().resolve(path, _dir_start(dirfd, path), follow=not flags & AT_SYMLINK_NOFOLLOW)


def _lookup_metadata(dirfd, path_ptr, flags, allowed):
    """Metadata for stat: of the open file itself when the path is empty (an unlinked
    file still has its metadata), else of what the path names."""
    loc = _lookup(dirfd, path_ptr, flags, allowed)
    if s32(dirfd) != AT_FDCWD and user_mem.read(path_ptr, 1) == b"\0":
        from . import get_file
        return get_file(s32(dirfd)).metadata()
    return loc.inode.metadata()


def _parent(dirfd, path):
    return current_vfs().resolve_parent(path, _dir_start(dirfd, path))


# ---- open ---------------------------------------------------------------------------------
def do_open(dirfd, path: str, flags: int, mode: int) -> int:
    if flags & O_TMPFILE == O_TMPFILE:
        raise SysError(ENOTSUP)
    if flags & O_PATH:
        flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
    files = current.thread.process.files
    limit = nofile_limit()
    files.put_check(limit)           # EMFILE before anything is created
    vfs = current_vfs()
    follow = not flags & O_NOFOLLOW
    if flags & O_CREAT:
        if flags & O_DIRECTORY:
            raise SysError(EINVAL)
        parent, name, trailing = _parent(dirfd, path)
        if name is None or trailing or name in (".", ".."):
            raise SysError(EISDIR)
        try:
            loc = vfs.child(parent, name)
        except SysError as exc:
            if exc.errno != ENOENT:
                raise
            perm = mode & 0o7777 & ~_view().umask
            loc = Loc(parent.names + (name,), parent.inode.create(name, S_IFREG | perm))
        else:
            if flags & O_EXCL:
                raise SysError(EEXIST)
            if loc.inode.mode() & S_IFMT == S_IFLNK:
                if not follow:
                    raise SysError(ELOOP)
                loc = vfs.resolve(path, _dir_start(dirfd, path))
    else:
        loc = vfs.resolve(path, _dir_start(dirfd, path), follow=follow)
    kind = loc.inode.mode() & S_IFMT
    if kind == S_IFLNK and not flags & O_PATH:
        raise SysError(ELOOP)             # O_NOFOLLOW on a link
    if flags & O_DIRECTORY and kind != S_IFDIR:
        raise SysError(ENOTDIR)
    access = flags & O_ACCMODE
    if kind == S_IFDIR and not flags & O_PATH and (access != O_RDONLY or flags & (O_TRUNC | O_CREAT)):
        raise SysError(EISDIR)
    handle = None
    if not flags & O_PATH:
        handle = loc.inode.open(flags)
        if flags & O_TRUNC and access != O_RDONLY and kind == S_IFREG:
            try:
                handle.truncate(0)
            except BaseException:
                handle.release()
                raise
    return files.put(OpenFile(loc, handle, flags), cloexec=bool(flags & O_CLOEXEC), limit=limit)


def sys_open(path, flags, mode):
    return do_open(AT_FDCWD, _path(path), u32(flags), u32(mode))


def sys_openat(dirfd, path, flags, mode):
    return do_open(dirfd, _path(path), u32(flags), u32(mode))


def sys_creat(path, mode):
    return do_open(AT_FDCWD, _path(path), O_CREAT | O_WRONLY | O_TRUNC, u32(mode))


# ---- stat and access ------------------------------------------------------------------------
def sys_stat(path, statbuf):
    return sys_newfstatat(AT_FDCWD, path, statbuf, 0)


def sys_lstat(path, statbuf):
    return sys_newfstatat(AT_FDCWD, path, statbuf, AT_SYMLINK_NOFOLLOW)


def sys_newfstatat(dirfd, path, statbuf, flags):
    meta = _lookup_metadata(dirfd, path, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)
    user_mem.write(statbuf, pack_stat(meta))
    return 0


def sys_statx(dirfd, path, flags, mask, statxbuf):
    if u32(mask) & 0x80000000:          # STATX__RESERVED
        raise SysError(EINVAL)
    meta = _lookup_metadata(dirfd, path, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT
                            | AT_STATX_SYNC_TYPE)
    user_mem.write(statxbuf, pack_statx(meta))
    return 0


def sys_access(path, mode):
    return _faccess(AT_FDCWD, path, mode, 0)


def sys_faccessat(dirfd, path, mode):
    return _faccess(dirfd, path, mode, 0)     # the system call has no flags argument


def sys_faccessat2(dirfd, path, mode, flags):
    return _faccess(dirfd, path, mode, flags)


def _faccess(dirfd, path, mode, flags):
    mode = u32(mode)
    if mode & ~(R_OK | W_OK | X_OK):
        raise SysError(EINVAL)
    loc = _lookup(dirfd, path, flags, AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH)
    meta = loc.inode.metadata()
    # everything runs as root: reading and writing are always allowed, running needs
    # an x bit on a file, and writing needs a writable file system
    if mode & X_OK and meta.mode & S_IFMT != S_IFDIR and not meta.mode & 0o111:
        from ..errno import EACCES
        raise SysError(EACCES)
    if mode & W_OK and getattr(loc.inode.fs, "read_only", False):
        raise SysError(EROFS)
    return 0


# ---- the working directory and the umask ----------------------------------------------------------
def sys_getcwd(buf, size):
    raw = _view().cwd.path.encode("utf-8", "surrogateescape") + b"\0"
    if size < len(raw):
        raise SysError(ERANGE)
    user_mem.write(buf, raw)
    return len(raw)


def _chdir(loc):
    if loc.inode.mode() & S_IFMT != S_IFDIR:
        raise SysError(ENOTDIR)
    _view().cwd = loc
    return 0


def sys_chdir(path):
    path = _path(path)
    return _chdir(current_vfs().resolve(path, _view().cwd))


def sys_fchdir(fd):
    from . import get_file
    return _chdir(get_file(s32(fd)).loc)


def sys_umask(mask):
    view = _view()
    old, view.umask = view.umask, u32(mask) & 0o777
    return old


# ---- making and removing names ----------------------------------------------------------------
def sys_mkdir(path, mode):
    return sys_mkdirat(AT_FDCWD, path, mode)


def sys_mkdirat(dirfd, path, mode):
    parent, name, _trailing = _parent(dirfd, _path(path))
    if name is None or name in (".", "..") or current_vfs().is_mount_point(parent.names + (name,)):
        raise SysError(EEXIST)
    parent.inode.mkdir(name, S_IFDIR | (u32(mode) & 0o7777 & ~_view().umask))
    return 0


def _removable(parent, name, is_dir):
    if name is None:
        raise SysError(EBUSY)
    if name == ".":
        raise SysError(EINVAL if is_dir else EISDIR)
    if name == "..":
        raise SysError(ENOTEMPTY if is_dir else EISDIR)
    if current_vfs().is_mount_point(parent.names + (name,)):
        raise SysError(EBUSY)


def sys_rmdir(path):
    return sys_unlinkat(AT_FDCWD, path, AT_REMOVEDIR)


def sys_unlink(path):
    return sys_unlinkat(AT_FDCWD, path, 0)


def sys_unlinkat(dirfd, path, flags):
    flags = u32(flags)
    if flags & ~AT_REMOVEDIR:
        raise SysError(EINVAL)
    parent, name, trailing = _parent(dirfd, _path(path))
    is_dir = bool(flags & AT_REMOVEDIR)
    _removable(parent, name, is_dir)
    if is_dir:
        parent.inode.rmdir(name)
    else:
        if trailing:
            kind = parent.inode.lookup(name).mode() & S_IFMT
            raise SysError(EISDIR if kind == S_IFDIR else ENOTDIR)
        parent.inode.unlink(name)
    return 0


def sys_rename(oldpath, newpath):
    return sys_renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)


def sys_renameat(olddirfd, oldpath, newdirfd, newpath):
    return sys_renameat2(olddirfd, oldpath, newdirfd, newpath, 0)


def sys_renameat2(olddirfd, oldpath, newdirfd, newpath, flags):
    if u32(flags):
        raise SysError(EINVAL)        # RENAME_NOREPLACE/EXCHANGE/WHITEOUT: not offered
    old_parent, old_name, old_trailing = _parent(olddirfd, _path(oldpath))
    new_parent, new_name, _ = _parent(newdirfd, _path(newpath))
    for parent, name in ((old_parent, old_name), (new_parent, new_name)):
        if name is None or name in (".", ".."):
            raise SysError(EBUSY if name is None else EINVAL)
        if current_vfs().is_mount_point(parent.names + (name,)):
            raise SysError(EBUSY)
    if old_parent.inode.fs is not new_parent.inode.fs:
        raise SysError(EXDEV)
    if old_trailing and old_parent.inode.lookup(old_name).mode() & S_IFMT != S_IFDIR:
        raise SysError(ENOTDIR)
    old_parent.inode.rename(old_name, new_parent.inode, new_name)
    return 0


def sys_link(oldpath, newpath):
    return sys_linkat(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)


def sys_linkat(olddirfd, oldpath, newdirfd, newpath, flags):
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise SysError(EINVAL)
    source = _lookup(olddirfd, oldpath, (flags & AT_EMPTY_PATH) | (0 if flags & AT_SYMLINK_FOLLOW
                                                                    else AT_SYMLINK_NOFOLLOW),
                     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)
    if source.inode.mode() & S_IFMT == S_IFDIR:
        raise SysError(EPERM)
    parent, name, trailing = _parent(newdirfd, _path(newpath))
    if name is None or name in (".", "..") or trailing:
        raise SysError(EEXIST if name is None or name in (".", "..") else ENOENT)
    if source.inode.fs is not parent.inode.fs:
        raise SysError(EXDEV)
    parent.inode.link(name, source.inode)
    return 0


def sys_symlink(target, linkpath):
    return sys_symlinkat(target, AT_FDCWD, linkpath)


def sys_symlinkat(target, newdirfd, linkpath):
    target = _path(target)
    if not target:
        raise SysError(ENOENT)
    parent, name, trailing = _parent(newdirfd, _path(linkpath))
    if name is None or name in (".", ".."):
        raise SysError(EEXIST)
    if trailing:
        raise SysError(ENOENT)
    parent.inode.symlink(name, target)
    return 0


def sys_readlink(path, buf, size):
    return sys_readlinkat(AT_FDCWD, path, buf, size)


def sys_readlinkat(dirfd, path, buf, size):
    if s32(size) <= 0:
        raise SysError(EINVAL)
    loc = _lookup(dirfd, path, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    raw = loc.inode.readlink().encode("utf-8", "surrogateescape")[:s32(size)]
    user_mem.write(buf, raw)
    return len(raw)


# ---- attributes --------------------------------------------------------------------------------------
def sys_chmod(path, mode):
    return sys_fchmodat(AT_FDCWD, path, mode)


def sys_fchmod(fd, mode):
    from . import get_file
    file = get_file(s32(fd))
    if file.flags & O_PATH:
        raise SysError(EBADF)
    file.inode.set_mode(u32(mode) & 0o7777)
    return 0


def sys_fchmodat(dirfd, path, mode):
    # the system call has no flags (fchmodat2 has; C libraries emulate lchmod)
    loc = _lookup(dirfd, path, 0, 0)
    loc.inode.set_mode(u32(mode) & 0o7777)
    return 0


def _accept_chown(loc):
    loc.inode.metadata()       # the file must exist; owners are not kept (all is root's)
    return 0


def sys_chown(path, owner, group):
    return _accept_chown(_lookup(AT_FDCWD, path, 0, 0))


def sys_lchown(path, owner, group):
    return _accept_chown(_lookup(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_NOFOLLOW))


def sys_fchown(fd, owner, group):
    from . import get_file
    get_file(s32(fd))
    return 0


def sys_fchownat(dirfd, path, owner, group, flags):
    return _accept_chown(_lookup(dirfd, path, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))


def sys_statfs(path, buf):
    loc = current_vfs().resolve(_path(path), _view().cwd)
    user_mem.write(buf, pack_statfs(loc.inode.fs))
    return 0


def sys_truncate(path, length):
    length = s64(length)
    if length < 0:
        raise SysError(EINVAL)
    loc = current_vfs().resolve(_path(path), _view().cwd)
    kind = loc.inode.mode() & S_IFMT
    if kind == S_IFDIR:
        raise SysError(EISDIR)
    loc.inode.truncate(length)
    return 0


_TIMESPEC = struct.Struct("<qq")


def _time_arg(sec, nsec, now):
    if nsec == UTIME_NOW:
        return now
    if nsec == UTIME_OMIT:
        return None
    if not 0 <= nsec < 10**9:
        raise SysError(EINVAL)
    return sec * 10**9 + nsec


def sys_utimensat(dirfd, path, times, flags):
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SysError(EINVAL)
    if path == 0:
        # futimens: the descriptor itself
        if s32(dirfd) == AT_FDCWD:
            raise SysError(EFAULT)
        loc = _start(dirfd)
    else:
        loc = _lookup(dirfd, path, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    now = now_ns()
    if times == 0:
        atime = mtime = now
    else:
        raw = user_mem.read(times, 32)
        atime = _time_arg(*_TIMESPEC.unpack_from(raw, 0), now)
        mtime = _time_arg(*_TIMESPEC.unpack_from(raw, 16), now)
    if atime is None and mtime is None:
        return 0
    loc.inode.set_times(atime, mtime)
    return 0


SYSCALLS = {
    "open": sys_open, "openat": sys_openat, "creat": sys_creat,
    "stat": sys_stat, "lstat": sys_lstat, "newfstatat": sys_newfstatat, "statx": sys_statx,
    "access": sys_access, "faccessat": sys_faccessat, "faccessat2": sys_faccessat2,
    "getcwd": sys_getcwd, "chdir": sys_chdir, "fchdir": sys_fchdir, "umask": sys_umask,
    "mkdir": sys_mkdir, "mkdirat": sys_mkdirat, "rmdir": sys_rmdir,
    "unlink": sys_unlink, "unlinkat": sys_unlinkat,
    "rename": sys_rename, "renameat": sys_renameat, "renameat2": sys_renameat2,
    "link": sys_link, "linkat": sys_linkat, "symlink": sys_symlink, "symlinkat": sys_symlinkat,
    "readlink": sys_readlink, "readlinkat": sys_readlinkat,
    "chmod": sys_chmod, "fchmod": sys_fchmod, "fchmodat": sys_fchmodat,
    "chown": sys_chown, "fchown": sys_fchown, "lchown": sys_lchown, "fchownat": sys_fchownat,
    "truncate": sys_truncate, "utimensat": sys_utimensat, "statfs": sys_statfs,
}
