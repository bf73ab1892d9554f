"""What every build step shares: instance paths, build options, atomic writes, and the
wrapper that turns a step's OcclumError into doit's clean TaskFailed."""
import functools
import os
import sys
import traceback
from pathlib import Path

from doit import get_var
from doit.dependency import JSONCodec
from doit.exceptions import TaskFailed

from ..errors import OcclumError

from ..paths import IMAGE_DIR

SGX_MODES = ("SIM", "HW")


class BuildOptions:
    """`occlum build` flags, carried into the task graph as doit variables
    (`doit build sign_key=... image_key=...`) so both front doors share them."""

    def __init__(self):
        self.sign_key = _opt_path("sign_key")
        self.sign_tool = _opt_path("sign_tool")
        self.image_key = _opt_path("image_key")
        self.buildin_image_key = _opt_flag("buildin_image_key")
        # -f: besides re-running every step, re-encode every file (repairs build/)
        self.force = _opt_flag("force")
        self.sgx_mode = (get_var("sgx_mode", None) or os.environ.get("SGX_MODE") or "SIM").upper()

    def problem(self):
        """The first thing wrong with the options, as one line, or None."""
        if sgx_mode_problem(self.sgx_mode):
            return sgx_mode_problem(self.sgx_mode)
        if self.sign_tool and not self.sign_key:
            return "--sign-tool needs --sign-key naming the signer's public key (PEM)"
        if self.buildin_image_key and not self.image_key:
            return "--buildin-image-key needs --image-key FILE"
        for flag, path in (("--sign-key", self.sign_key), ("--sign-tool", self.sign_tool),
                           ("--image-key", self.image_key)):
            if path and not path.is_file():
                return f"{flag} {path}: no such file"
        return None


def sgx_mode_problem(mode):
    if mode == "HW":
        return ("--sgx-mode HW: this emulated enclave runs without SGX hardware; "
                "build with --sgx-mode SIM (the default)")
    if mode not in SGX_MODES:
        return f"--sgx-mode {mode}: unknown mode; use SIM"
    return None


def _opt_flag(name):
    return get_var(name, "") not in ("", "0", "N", "n", "no")


def _opt_path(name):
    value = get_var(name, None)
    return Path(value).expanduser() if value else None


def existing(*paths):
    """file_dep entries for files that exist: a missing input is reported by the
    step's own action in one line, instead of doit's runtime error."""
    return [str(p) for p in paths if p and Path(p).is_file()]


# Test hook (tests/test_build.py): OCCLUM_TEST_KILL_AT=<point> makes the build SIGKILL
# itself there (OCCLUM_TEST_KILL_SIGNAL=INT: Ctrl-C instead), to prove that no
# interleaving of kills leaves a stale output that a later build accepts. Points:
# before:<step>, after:<step> (its outputs written, not yet recorded), inside:<step>
# (between two of its outputs), commit:<stage> (commit.py), db:dump (doit's database
# truncated, not yet written). <step> is a step's module name; `build` is the commit.
KILL_AT = "OCCLUM_TEST_KILL_AT"


def kill_point(name):
    if os.environ.get(KILL_AT) == name:
        import signal
        sig = os.environ.get("OCCLUM_TEST_KILL_SIGNAL", "KILL")
        os.kill(os.getpid(), getattr(signal, "SIG" + sig))


_building = []


def mark_building():
    """Record, once per build, that staged outputs are about to change (build_state)."""
    if not _building:
        from ..build_state import BUILDING, write_marker
        write_marker(BUILDING)
        _building.append(True)


def step_action(func, stages=True):
    """Run a step; a user error becomes TaskFailed (one line, no traceback), an
    unexpected exception too, with the traceback only at OCCLUM_LOG_LEVEL=debug.
    stages: the step writes staged outputs (build_state.BUILDING is recorded first)."""
    step = func.__module__.rsplit(".", 1)[-1]      # one module per step

    @functools.wraps(func)
    def action(*args, **kwargs):
        try:
            if stages:
                mark_building()
            kill_point(f"before:{step}")
            result = func(*args, **kwargs)
            kill_point(f"after:{step}")
        except OcclumError as err:
            return TaskFailed(str(err))
        except Exception as err:  # noqa: BLE001 - the user gets one line, not a traceback
            if debug_enabled():
                traceback.print_exc()
            return TaskFailed(f"internal error in {func.__name__}: {type(err).__name__}: {err}")
        return result if isinstance(result, (dict, TaskFailed)) else None

    return action


def debug_enabled():
    return os.environ.get("OCCLUM_LOG_LEVEL", "").lower() in ("debug", "trace")


def info(msg):
    print(msg, file=sys.stderr, flush=True)


class TolerantJSONCodec(JSONCodec):
    """doit's JSON codec for its database (build/.doit.db), except that a file a kill
    cut short (doit truncates it, then writes it whole) reads as empty: every step
    then runs again, which is slow but right, where doit would stop the build."""

    def encode(self, data):
        kill_point("db:dump")       # doit has just truncated the file
        return super().encode(data)

    def decode(self, data):
        try:
            return super().decode(data)
        except ValueError:
            info("build/.doit.db was cut short (an interrupted build?); every step runs again")
            return {}


class ImageFileChecker:
    """doit's file checker, except for files under image/: those are compared by their
    stat (mtime, size, inode, ctime: a file replaced with its mtime kept, as `cp -p`
    or rsync do, still changes inode or ctime) without hashing. The image writer
    re-hashes what changed anyway, and hashing a large image after each build would
    cost more than the build."""

    CheckerError = OSError

    def __init__(self):
        from doit.dependency import MD5Checker
        self.md5 = MD5Checker()

    @staticmethod
    def _in_image(path):
        return Path(path).parts[:1] == IMAGE_DIR.parts

    @staticmethod
    def _stamp(st):
        return [st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns]

    def exists(self, file_path):
        return os.path.exists(file_path)

    def info(self, file_path):
        return os.stat(file_path)

    def check_modified(self, file_path, file_stat, state):
        if self._in_image(file_path):
            return self._stamp(file_stat) != list(state)
        return self.md5.check_modified(file_path, file_stat, state)

    def get_state(self, dep, current_state):
        if self._in_image(dep):
            state = self._stamp(os.stat(dep))
            return None if current_state is not None and list(current_state) == state else state
        return self.md5.get_state(dep, current_state)
