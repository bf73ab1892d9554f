"""Where the build steps write, and how each step knows its own outputs are current.

Staging: every output of a step goes to build/.stage/, a mirror of the committed
layout (the same names as occlum_tasks.paths, under .stage/); the `build` task commits
them when every step has succeeded (commit.py). A step imports its output paths from
here and its inputs from occlum_tasks.paths.

Exactness: doit saves its database once, at the end of a run, so after a kill a step's
targets on disk can come from inputs other than those the database recorded; and a
step whose targets were removed or changed (`doit clean`, a hand edit) may find its
inputs unchanged. So each step records a digest of its own outputs in the database
entry that also holds its inputs' state (`record_outputs`, its last action), and is
up to date only if the outputs on disk still have that digest (`outputs_unchanged`).
A database entry is written whole or not at all with the states it pairs, so whatever
was interrupted where, a step is skipped only when its outputs are exactly what it
made from the inputs it finds. (Saving the database after each step instead would
still leave a window between a step's last write and that save.)
"""
import hashlib
import os
import stat as st_mod
from pathlib import Path

from .. import paths

STAGE_DIR = paths.BUILD_DIR / ".stage"


def staged(path) -> Path:
    return STAGE_DIR / Path(path).relative_to(paths.BUILD_DIR)


RESOLVED_JSON = staged(paths.RESOLVED_JSON)
INITFS_ROOT = staged(paths.INITFS_ROOT)
INITFS_ROOT_MAC = staged(paths.INITFS_ROOT_MAC)
IMAGE_ROOT = staged(paths.IMAGE_ROOT)
IMAGE_ROOT_MAC = staged(paths.IMAGE_ROOT_MAC)
SYS_JSON = staged(paths.SYS_JSON)
SYS_PROTECTED = staged(paths.SYS_PROTECTED)
SYS_MAC = staged(paths.SYS_MAC)
RUNTIME_MANIFEST = staged(paths.RUNTIME_MANIFEST)
LAYOUT = staged(paths.LAYOUT)
SIGSTRUCT = staged(paths.SIGSTRUCT)

# What a commit puts in place, folders first and the SIGSTRUCT last: (staged, committed).
COMMITTED_TREES = ((INITFS_ROOT, paths.INITFS_ROOT), (IMAGE_ROOT, paths.IMAGE_ROOT))
COMMITTED_FILES = tuple((staged(p), p) for p in (
    paths.RESOLVED_JSON, paths.INITFS_ROOT_MAC, paths.IMAGE_ROOT_MAC, paths.SYS_JSON,
    paths.SYS_PROTECTED, paths.SYS_MAC, paths.RUNTIME_MANIFEST, paths.LAYOUT,
    paths.SIGSTRUCT))


def outputs_digest(outputs) -> str:
    """SHA-256 over the outputs: a file's bytes; a folder's entries by name, size,
    mtime and inode (node files are never rewritten in place, so a changed entry is a
    new inode; hashing a large image at every build would cost more than building it)."""
    h = hashlib.sha256()
    for path in outputs:
        h.update(os.fsencode(path) + b"\0")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            h.update(b"missing\n")
            continue
        if st_mod.S_ISDIR(st.st_mode):
            with os.scandir(path) as it:
                entries = sorted((e.name, e.stat(follow_symlinks=False)) for e in it)
            for name, est in entries:
                h.update(f"{name}\0{est.st_mode:o}\0{est.st_size}\0{est.st_mtime_ns}\0"
                         f"{est.st_ino}\n".encode())
        elif st_mod.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                h.update(b"file\0" + hashlib.sha256(f.read()).digest())
        else:
            h.update(f"other {st.st_mode:o}\n".encode())
    return h.hexdigest()


def record_outputs(outputs):
    """The last action of a step: the digest that outputs_unchanged compares with."""
    outputs = [str(p) for p in outputs]

    def record():
        return {"outputs": outputs_digest(outputs)}
    record.__name__ = "record_outputs"
    return record


def outputs_unchanged(outputs):
    """doit uptodate callable: the step's outputs are those it recorded making."""
    outputs = [str(p) for p in outputs]

    def unchanged(task, values):
        return values.get("outputs") == outputs_digest(outputs)
    return unchanged


def with_outputs(task: dict, outputs) -> dict:
    """A step's task dict with its outputs recorded and checked (see the docstring)."""
    task = dict(task)
    task["actions"] = list(task["actions"]) + [record_outputs(outputs)]
    task["uptodate"] = list(task.get("uptodate", [])) + [outputs_unchanged(outputs)]
    return task
