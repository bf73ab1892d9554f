"""Step `image`: every file under image/ -> the SEFS tree build/mount/__ROOT and its
root MAC build/mount/.ROOT_MAC. The writer is incremental inside the step: a changed
file re-encodes that file and its path to the root."""
import hashlib
import os
import stat
import sys
import time

from doit.tools import config_changed

from ..fsutil import remove_tree, write_atomic
from .common import BuildOptions, existing, info, kill_point, step_action
from ..paths import CACHE_DIR, IMAGE_DIR
from .stage import IMAGE_ROOT, IMAGE_ROOT_MAC, with_outputs


def scan_tree(top):
    """(regular files, digest of the tree's shape). doit's file_dep sees contents of
    regular files only; the digest adds what it cannot see: empty folders, modes,
    symlink targets. Names are taken as bytes (any file name is valid); a file that
    vanishes meanwhile is left to the image step to report."""
    files, shape = [], hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                extra = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            except OSError:
                continue
            shape.update(os.fsencode(path) + f"\0{st.st_mode:o}\0".encode()
                         + os.fsencode(extra) + b"\n")
            if stat.S_ISREG(st.st_mode):
                files.append(path)
    return files, shape.hexdigest()


class Progress:
    """A one-line progress display for long image builds, on terminals only."""

    def __init__(self, label):
        self.label, self.shown = label, -1
        self.tty = sys.stderr.isatty()

    def __call__(self, done, total):
        if not self.tty or total < (64 << 20):
            return
        percent = done * 100 // max(total, 1)
        if percent != self.shown:
            self.shown = percent
            end = "\n" if done >= total else ""
            print(f"\r{self.label}: {done / 1e6:.0f} of {total / 1e6:.0f} MB ({percent}%)",
                  end=end, file=sys.stderr, flush=True)


def encode_tree(src, root, root_mac_file, cache, key_file, label, *, force=False,
                file_mode=0o644):
    from ..image.keys import format_mac, read_image_key_file
    from ..image.writer import build_image
    from ..errors import OcclumError
    if not src.is_dir():
        raise OcclumError(f"{src}/: no such folder; run `occlum init` to create it")
    key = read_image_key_file(key_file) if key_file else None
    start = time.perf_counter()
    stats = build_image(src, root, key=key, cache=cache, progress=Progress(label), force=force,
                        file_mode=file_mode)
    kill_point(f"inside:{label}")      # the tree is new, its root MAC file not yet
    write_atomic(root_mac_file, format_mac(stats.root_mac) + "\n")
    elapsed = time.perf_counter() - start
    info(f"{label}: {stats.files_encoded} of {stats.files_total} files encoded "
         f"({stats.bytes_encoded / 1e6:.1f} of {stats.bytes_total / 1e6:.1f} MB) "
         f"in {elapsed:.2f} s" + (", encrypted" if key else ""))


@step_action
def build_image_step():
    opts = BuildOptions()
    encode_tree(IMAGE_DIR, IMAGE_ROOT, IMAGE_ROOT_MAC, CACHE_DIR / "image.json",
                opts.image_key, "image", force=opts.force)


def clean_tree(*paths):
    def clean():
        for path in paths:
            remove_tree(path)       # a planted link is removed, never followed
    return clean


def task_image():
    opts = BuildOptions()
    files, shape = scan_tree(str(IMAGE_DIR)) if IMAGE_DIR.is_dir() else ([], "")
    return with_outputs({
        "doc": "encode image/ into the integrity-protected SEFS tree build/mount/__ROOT",
        "actions": [build_image_step],
        "file_dep": files + existing(opts.image_key),
        "targets": [str(IMAGE_ROOT_MAC)],
        "uptodate": [config_changed({"shape": shape, "encrypted": bool(opts.image_key)})],
        "clean": [clean_tree(IMAGE_ROOT, IMAGE_ROOT_MAC, CACHE_DIR / "image.json")],
    }, [IMAGE_ROOT, IMAGE_ROOT_MAC])
