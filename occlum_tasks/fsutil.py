"""Host file helpers shared by the build, the file system formats and the launch.

No symbolic link is ever followed below an anchor folder: a guest can create links
through hostfs, and a link planted at build/mount/__ROOT or run/mount/__ROOT/.tmp-x
must not make the build or the writable layer write, read or delete a file outside.
So a path is walked one component at a time from a descriptor of its anchor, each
component opened with O_NOFOLLOW, and a component that is a link is refused
(LinkRefused); files are then opened, created (O_EXCL for temporaries), renamed and
removed relative to the descriptor of their folder.

The anchor is `base` when the caller gives it (the launch names the instance folder),
else the working directory for a relative path (the build runs in the instance, with
the relative paths of paths.py), else, for an absolute path, its parent folder: the
folders a caller names itself are trusted as named (a home folder may well be a link);
only what lies below them is not.
"""
import errno
import os
import shutil
import stat as st_mod
from pathlib import Path

from .errors import OcclumError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# for files that are only read: a FIFO planted in their place must not block the open
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class LinkRefused(OcclumError, OSError):
    """A component of a path that is written or trusted is a symbolic link."""

    def __init__(self, shown):
        OSError.__init__(self, errno.ELOOP, "is a symbolic link", shown)
        self.shown = shown

    def __str__(self):
        return (f"{self.shown}: is a symbolic link; occlum never follows a link in a folder "
                "it writes or trusts (remove it)")


def _parts(path):
    parts = [p for p in os.fsdecode(path).split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{os.fsdecode(path)}: '..' is not allowed here")
    return parts


def _anchor(path, base):
    """(anchor folder, components below it, how to show the path)."""
    path = os.fsdecode(path)
    if base is not None:
        base = os.fsdecode(base)
        if os.path.isabs(path):
            rel = os.path.relpath(path, base)
            if rel == ".." or rel.startswith("../"):
                raise ValueError(f"{path}: is not inside {base}")
            path = rel
        return base, _parts(path), path
    if not os.path.isabs(path):
        return ".", _parts(path), path
    parent, name = os.path.split(path.rstrip("/") or "/")
    return parent or "/", _parts(name), path


def _refuse_if_link(dir_fd, name, shown):
    try:
        if st_mod.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise LinkRefused(shown)
    except FileNotFoundError:
        pass


def _open_component(fd, part, here, create, mode):
    try:
        return os.open(part, DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", here) from None
    except OSError as exc:
        _refuse_if_link(fd, part, here)
        raise OSError(exc.errno, exc.strerror, here) from None
    try:
        os.mkdir(part, mode, dir_fd=fd)
    except FileExistsError:
        pass
    try:
        return os.open(part, DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        _refuse_if_link(fd, part, here)
        raise OSError(exc.errno, exc.strerror, here) from None


def open_dir(path, *, base=None, create=False, mode=0o755) -> int:
    """A descriptor (O_RDONLY, O_DIRECTORY) of the folder `path`, walked from its
    anchor without following a link; missing folders are made when `create`.
    Raises LinkRefused, FileNotFoundError, NotADirectoryError (OSErrors)."""
    anchor, parts, shown = _anchor(path, base)
    if create:
        os.makedirs(anchor, exist_ok=True)
    fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    # messages name the path as given (relative to the instance in the build and launch)
    prefix = anchor if base is None and os.path.isabs(shown) else ""
    walked = []
    for part in parts:
        walked.append(part)
        try:
            nfd = _open_component(fd, part, os.path.join(prefix, *walked), create, mode)
        finally:
            os.close(fd)
        fd = nfd
    return fd


def open_file(dir_fd, name, flags, mode=0o644, shown=None):
    """os.open(name, flags | O_NOFOLLOW | O_CLOEXEC, dir_fd): a link there is refused."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR, errno.ENXIO):
            _refuse_if_link(dir_fd, name, shown or os.fsdecode(name))
        raise


def read_small(dir_fd, name, limit=None, shown=None) -> bytes:
    """At most `limit` bytes (all when None) of a regular file in a folder (no link, no
    FIFO followed)."""
    fd = open_file(dir_fd, name, READ_FLAGS, shown=shown)
    try:
        if not st_mod.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "is not a regular file", shown or os.fsdecode(name))
        out = bytearray()
        while limit is None or len(out) < limit:
            chunk = os.read(fd, 1 << 20 if limit is None else min(limit - len(out), 1 << 20))
            if not chunk:
                break
            out += chunk
        return bytes(out)
    finally:
        os.close(fd)


def _parent_fd(path, base, create=False):
    """A descriptor of the folder holding `path` (as write_atomic and read_file use)."""
    if base is None and path.is_absolute():
        return open_dir(".", base=path.parent, create=create)     # the folder as named
    return open_dir(path.parent, base=base, create=create)


def remove_tree(path, *, base=None):
    """Remove `path` (a folder and all under it, or a file) without following a link: a
    link on the way there is refused, a link at `path` or inside is removed itself,
    never its target. A missing path is no error (this is what cleaning needs)."""
    path = Path(path)
    try:
        dfd = _parent_fd(path, base)
    except FileNotFoundError:
        return
    try:
        try:
            st = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if st_mod.S_ISDIR(st.st_mode):
            shutil.rmtree(path.name, dir_fd=dfd)     # fd-based: links inside are not followed
        else:
            os.unlink(path.name, dir_fd=dfd)
    finally:
        os.close(dfd)


def read_file(path, *, base=None) -> bytes:
    """The bytes of a regular file, its folder walked as open_dir does (no link)."""
    path = Path(path)
    dfd = _parent_fd(path, base)
    try:
        return read_small(dfd, path.name, shown=str(path))
    finally:
        os.close(dfd)


def create_temporary(dir_fd, name, mode=0o600, shown=None) -> int:
    """A new file `name` in the folder, O_EXCL: a leftover of an interrupted writer (or
    a link someone planted under that name) is removed first, never written through."""
    for _ in range(3):
        try:
            return open_file(dir_fd, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, shown)
        except FileExistsError:
            try:
                os.unlink(name, dir_fd=dir_fd)      # removes a link itself, not its target
            except FileNotFoundError:
                pass
    raise FileExistsError(errno.EEXIST, "keeps reappearing", shown or os.fsdecode(name))


def write_atomic(path, data, mode=0o644, *, base=None, sync=False):
    """Write to a temporary name beside `path`, then rename: an interrupted build
    never leaves a half-written target that a later build takes as current. The folder
    is walked from its anchor (see the module's note) and made if missing; the
    temporary is created with O_EXCL, so no link there or at `path` is written through.
    sync: fsync the file and the folder (the data survives a crash of the host)."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    name = path.name
    dfd = _parent_fd(path, base, create=True)
    try:
        tmp = "." + name + ".tmp-" + os.urandom(6).hex()
        fd = create_temporary(dfd, tmp, 0o600, str(path.parent / tmp))
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, mode)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        if sync:
            os.fsync(dfd)
    finally:
        os.close(dfd)
