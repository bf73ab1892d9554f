"""Where a build stands: finished, running, failed or interrupted (DESIGN.md section 4).

The build steps write every output under build/.stage/; only when all of them have
succeeded does the last task commit them to the places `occlum run` reads
(steps/commit.py). So a build that fails or is killed before its commit leaves the
previous complete build in place, and two records tell the rest:

  build/.building    a build has staged outputs it has not committed yet: it is
                     running (its pid is alive), or it failed or was interrupted;
  build/.committing  a commit is moving the staged outputs into place: while it runs,
                     or after it was interrupted, the committed files may be a mixture
                     of two builds, and `occlum run` refuses them until a build ends.

Each holds the pid of the build that wrote it. This module is on the `occlum run`
path: it imports neither doit nor jsonschema.
"""
import os
from pathlib import Path

from .errors import OcclumError
from .paths import BUILD_DIR, SIGSTRUCT, STATUS_FILE

BUILDING = BUILD_DIR / ".building"
COMMITTING = BUILD_DIR / ".committing"


class BuildIncomplete(OcclumError):
    """The committed build is a mixture of two builds (an interrupted commit)."""


def write_marker(marker: Path) -> None:
    from .fsutil import write_atomic
    write_atomic(marker, f"{os.getpid()}\n")


def remove_marker(marker: Path) -> None:
    try:
        os.unlink(marker)
    except FileNotFoundError:
        pass


def marker_pid(instance, marker: Path):
    """None without the record; else the pid that wrote it (0 if unreadable)."""
    try:
        text = (Path(instance) / marker).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return 0
    return int(text.strip()) if text.strip().isdigit() else 0


def alive(pid) -> bool:
    """Whether a process with that pid exists (another user's counts too)."""
    if not pid or pid == os.getpid():
        return bool(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_complete(instance) -> None:
    """Raise BuildIncomplete unless the committed build is one whole build."""
    pid = marker_pid(instance, COMMITTING)
    if pid is None:
        return
    if alive(pid) and pid != os.getpid():
        raise BuildIncomplete(f"a build (pid {pid}) is putting its outputs in place; run "
                              "again when it has finished")
    raise BuildIncomplete("the build is incomplete: a build was interrupted while it put its "
                          "outputs in place (build/.committing); run `occlum build`")


def status_text(instance) -> str:
    """What `occlum status` prints about the build: "initialized", "built", or either
    with what a running, failed or interrupted build left."""
    instance = Path(instance)
    committing = marker_pid(instance, COMMITTING)
    if committing is not None:
        if alive(committing):
            return f"building (pid {committing}, putting the new build in place)"
        return ("incomplete: a build was interrupted while it put its outputs in place; "
                "run `occlum build`")
    building = marker_pid(instance, BUILDING)
    built = (instance / SIGSTRUCT).is_file()
    if building is not None and alive(building):
        return f"built (a new build is running, pid {building})" if built else \
            f"building (pid {building})"
    if not built:
        try:
            recorded = (instance / STATUS_FILE).read_text().strip()
        except OSError:
            recorded = "initialized"
        state = "initialized" if recorded == "built" else recorded
        if building is not None:
            return f"{state} (a build did not complete; run `occlum build`)"
        return state
    if building is not None:
        return ("built (the last build did not complete, this is the one before it; "
                "`occlum build` finishes it)")
    return "built"
