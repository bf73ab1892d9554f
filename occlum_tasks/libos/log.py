"""OCCLUM_LOG_LEVEL logging: `[LEVEL][T<tid>][#<round>][<syscall>] message` to stderr.

Zero cost when off: callers on hot paths test `log.level >= log.TRACE` (an attribute
read) before building anything; the level functions format lazily (`msg % args`) and
only after the level check. The dispatcher keeps the context (tid, round, syscall name)
up to date only when logging is on (see syscall/dispatch.py).
"""
import os

OFF, ERROR, WARN, INFO, DEBUG, TRACE = range(6)
_NAMES = {ERROR: "ERROR", WARN: "WARN", INFO: "INFO", DEBUG: "DEBUG", TRACE: "TRACE"}
_ALIASES = {
    "off": OFF, "error": ERROR, "panic": ERROR, "fatal": ERROR,
    "warn": WARN, "warning": WARN, "info": INFO, "debug": DEBUG, "trace": TRACE,
}
# Occlum colours lines by level; only when stderr is a terminal
_COLOURS = {ERROR: "\x1b[31m", WARN: "\x1b[33m", INFO: "\x1b[32m", DEBUG: "\x1b[36m", TRACE: "\x1b[90m"}

level = OFF
_fd = 2
_colour = False
# context of the line: set by the dispatcher (and by the boot code outside calls)
tid = 0
sys_round = 0
syscall = "-"


_once = set()


def warn_once(key, msg: str, *args) -> None:
    """A warning written once per run for each key (unsupported features)."""
    if key not in _once:
        _once.add(key)
        warn(msg, *args)


def parse_level(value) -> int:
    """Occlum's rule: case-insensitive names; anything else (or unset) is off."""
    if not value:
        return OFF
    return _ALIASES.get(str(value).strip().lower(), OFF)


def configure(value=None, *, fd: int = 2, cap: int = TRACE) -> int:
    """Set the level from an OCCLUM_LOG_LEVEL value (default: the environment).

    `cap` lets a release enclave cap logging at `error` (occlum-facts: disable_log)."""
    global level, _fd, _colour
    if value is None:
        value = os.environ.get("OCCLUM_LOG_LEVEL")
    level = min(parse_level(value), cap)
    _fd = fd
    _once.clear()
    try:
        _colour = os.isatty(fd)
    except OSError:
        _colour = False
    return level


def set_context(thread_id: int, syscall_round: int, syscall_name: str) -> None:
    global tid, sys_round, syscall
    tid, sys_round, syscall = thread_id, syscall_round, syscall_name


def emit(lvl: int, msg: str, args=()) -> None:
    """Write one line; never raises (logging must not break the LibOS)."""
    try:
        if args:
            msg = msg % args
        line = "[%s][T%d][#%d][%s] %s" % (_NAMES[lvl], tid, sys_round, syscall, msg)
        if _colour:
            line = _COLOURS[lvl] + line + "\x1b[0m"
        os.write(_fd, (line + "\n").encode("utf-8", "backslashreplace"))
    except Exception:  # noqa: BLE001 - a broken stderr must not kill the enclave
        pass


def error(msg: str, *args) -> None:
    if level >= ERROR:
        emit(ERROR, msg, args)


def warn(msg: str, *args) -> None:
    if level >= WARN:
        emit(WARN, msg, args)


def info(msg: str, *args) -> None:
    if level >= INFO:
        emit(INFO, msg, args)


def debug(msg: str, *args) -> None:
    if level >= DEBUG:
        emit(DEBUG, msg, args)


def trace(msg: str, *args) -> None:
    if level >= TRACE:
        emit(TRACE, msg, args)
