"""The `build` task's action: put the staged build in place, whole (build_state.py).

Every step wrote under build/.stage/ (stage.py). The commit hard-links those outputs to
the places `occlum run` reads: a folder (an image tree) is linked into a fresh folder
beside it, then swapped in by two renames; a file is linked to a temporary name and
renamed over. Nothing is copied (the image's node files are never rewritten in place,
so the staged and the committed tree share them), and an output that is already in
place (the same inode) is left alone, so a build with nothing new commits nothing.
build/.committing is written first and removed last: a commit cut short shows, and
`occlum run` refuses a mixture of two builds. While the commit changes anything, the
instance's lock is held (instance_lock.py): no enclave runs what is being replaced.

Last, the writable layer run/: its key derives from the signer, product, version and
debug flag (its owner, run/.owner). When the owner changes, the new enclave could not
read the layer, so it is moved aside to run.old-<time>/; and when the owner returns to
one whose layer waits in a run.old-*/, that layer is brought back. Nothing is deleted.
"""
import os
import re
import stat as st_mod
import time
from pathlib import Path

from .. import fsutil
from ..build_state import BUILDING, COMMITTING, remove_marker, write_marker
from ..errors import OcclumError
from ..image.format import TMP_PREFIX
from ..paths import RUN_DIR, RUN_OWNER, RUN_ROOT, STATUS_FILE
from .common import info, kill_point
from .stage import COMMITTED_FILES, COMMITTED_TREES, SIGSTRUCT as STAGED_SIGSTRUCT

OLD_LAYER = re.compile(r"run\.old-(\d{8}-\d{6})(?:-(\d+))?\Z")


# --- what differs ------------------------------------------------------------------------

def _inode(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st_mod.S_IFMT(st.st_mode))


def _tree_inodes(folder):
    try:
        with os.scandir(folder) as it:
            return {e.name: e.inode() for e in it
                    if e.is_file(follow_symlinks=False) and not e.name.startswith(TMP_PREFIX)}
    except (FileNotFoundError, NotADirectoryError):
        return None


def _changes():
    """The (staged, committed, is_tree) pairs whose committed side differs."""
    out = []
    for staged, committed in COMMITTED_TREES:
        have = _tree_inodes(staged)
        if have is None:
            raise OcclumError(f"{staged}: missing; run `occlum build -f`")
        if os.path.islink(committed) or have != _tree_inodes(committed):
            out.append((staged, committed, True))
    for staged, committed in COMMITTED_FILES:
        have = _inode(staged)
        if have is None:
            raise OcclumError(f"{staged}: missing; run `occlum build -f`")
        if have != _inode(committed):
            out.append((staged, committed, False))
    return out


# --- linking -----------------------------------------------------------------------------

def _link_file(staged, committed):
    sfd = fsutil.open_dir(staged.parent)
    try:
        dfd = fsutil.open_dir(committed.parent, create=True)
        try:
            tmp = f".{committed.name}.commit"
            fsutil.remove_tree(committed.parent / tmp)
            os.link(staged.name, tmp, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            os.replace(tmp, committed.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _link_tree(staged, committed):
    parent = committed.parent
    tmp, old = parent / f".{committed.name}.commit", parent / f".{committed.name}.old"
    fsutil.remove_tree(tmp)         # left by an interrupted commit
    sfd = fsutil.open_dir(staged)
    try:
        tfd = fsutil.open_dir(tmp, create=True)
        try:
            for name in sorted(_tree_inodes(staged)):
                os.link(name, name, src_dir_fd=sfd, dst_dir_fd=tfd, follow_symlinks=False)
        finally:
            os.close(tfd)
    finally:
        os.close(sfd)
    pfd = fsutil.open_dir(parent)
    try:
        fsutil.remove_tree(old)
        try:
            os.rename(committed.name, old.name, src_dir_fd=pfd, dst_dir_fd=pfd)
        except FileNotFoundError:
            pass
        os.rename(tmp.name, committed.name, src_dir_fd=pfd, dst_dir_fd=pfd)
    finally:
        os.close(pfd)
    fsutil.remove_tree(old)


# --- the writable layer --------------------------------------------------------------------

def _owner_of(sigstruct: bytes) -> str:
    from ..sgx.keys import writable_layer_owner
    from ..sgx.sigstruct import parse_sigstruct
    f = parse_sigstruct(sigstruct)
    return writable_layer_owner(f["mrsigner"], f["isvprodid"], f["isvsvn"], f["debug"], f["kss"])


def _read_owner(folder: Path):
    try:
        return fsutil.read_file(folder / RUN_OWNER.name).decode("ascii", "replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return ""


def _holds_data(folder: Path) -> bool:
    """A layer folder (mount/__ROOT), or any file but the records (.owner, .lock)."""
    if os.path.lexists(folder / RUN_ROOT.relative_to(RUN_DIR)):
        return True
    for dirpath, dirnames, filenames in os.walk(folder):
        if any(not (dirpath == str(folder) and f in (RUN_OWNER.name, ".lock"))
               for f in filenames):
            return True
    return False


def _old_layers():
    """run.old-*/ folders, newest first."""
    found = []
    for entry in os.scandir("."):
        m = OLD_LAYER.match(entry.name)
        if m and entry.is_dir(follow_symlinks=False):
            found.append(((m.group(1), int(m.group(2) or 0)), Path(entry.name)))
    return [path for _, path in sorted(found, reverse=True)]


def _move_aside() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        aside = Path(f"run.old-{stamp}" + (f"-{n}" if n > 1 else ""))
        if not os.path.lexists(aside):     # never over another layer moved aside
            os.rename(RUN_DIR, aside)
            return aside
    raise OcclumError(f"{RUN_DIR}/: cannot find a free run.old-{stamp}-N name to move it to")


def _what_changed(recorded: str, owner: str) -> str:
    """What changed between two run/.owner lines (`name value` pairs), and what the
    user can do about it."""
    def fields(line):
        words = line.split()
        return dict(zip(words[::2], words[1::2]))
    before, after = fields(recorded), fields(owner)
    if before.get("mrsigner") != after.get("mrsigner"):
        return "the signer", "a build signed as before brings it back"
    if before.get("layer-key") != after.get("layer-key"):
        return ("the writable layer's key derivation (now one key per mount)",
                "an earlier occlum-py wrote it; this one cannot read it, and keeps it there")
    return "product_id, version_number or debuggable", "a build signed as before brings it back"


def keep_writable_layer(owner: str) -> None:
    recorded = _read_owner(RUN_DIR)
    if recorded == owner:
        return
    # (no record at all: a layer that a run made before any build recorded it; kept)
    back = None if recorded is None else next(
        (p for p in _old_layers() if _read_owner(p) == owner), None)
    if recorded is not None and os.path.lexists(RUN_DIR):
        if _holds_data(RUN_DIR):
            what, hint = _what_changed(recorded, owner)
            aside = _move_aside()
            info(f"build: {what} changed, so this enclave cannot read the writable layer "
                 f"run/: moved it to {aside}/ ({hint})")
        elif back is not None:
            fsutil.remove_tree(RUN_DIR)    # its records only: nothing to keep
    if back is not None and not os.path.lexists(RUN_DIR):
        os.rename(back, RUN_DIR)
        info(f"build: brought {back}/ back as run/: it is the writable layer of this "
             "enclave's signer, product and version")
    os.close(fsutil.open_dir(RUN_ROOT.parent, create=True))
    fsutil.write_atomic(RUN_OWNER, owner)


# --- the commit ----------------------------------------------------------------------------

def _busy_message(pid):
    who = f"pid {pid}" if pid else "pid unknown"
    return (f"an enclave runs on this instance ({who}); the new build is staged but not put "
            "in place while it runs: run `occlum build` again when it has stopped")


changed = []     # set when a commit put something in place (the reporter says "Built")


def commit():
    changes = _changes()
    owner = _owner_of(fsutil.read_file(STAGED_SIGSTRUCT))
    pending = os.path.lexists(COMMITTING)
    if not changes and not pending and _read_owner(RUN_DIR) == owner:
        _finish()
        return
    from ..instance_lock import InstanceBusy, hold, running
    try:
        with hold(Path(".")):
            write_marker(COMMITTING)
            kill_point("commit:begin")
            for staged, committed, is_tree in changes:
                if is_tree:
                    _link_tree(staged, committed)
            kill_point("commit:trees")
            for staged, committed, is_tree in changes:
                if not is_tree:
                    _link_file(staged, committed)
            kill_point("commit:files")
            keep_writable_layer(owner)
            kill_point("commit:layer")
            _finish()
            changed.append(bool(changes))
    except InstanceBusy:
        raise OcclumError(_busy_message(running(Path(".")))) from None


def _finish():
    fsutil.write_atomic(STATUS_FILE, "built")
    remove_marker(COMMITTING)
    remove_marker(BUILDING)
