"""Decoding system call arguments for trace lines, like strace does.

Argument kinds: d signed int, D signed 64-bit, u unsigned, x hex, p pointer, s C string,
b buffer whose length is the next argument (shown for writes), P prot, M mmap flags.
Calls not listed show their six registers in hex.
"""
from ..errno import NAMES as ERRNO_NAMES
from ..vm import user_mem

SIGNATURES = {
    "read": "dpu", "write": "dbu", "close": "d", "fstat": "dp", "lseek": "dDd",
    "mmap": "pxPMdx", "mprotect": "pxP", "munmap": "px", "brk": "p", "ioctl": "dxp",
    "pread64": "dpuD", "pwrite64": "dbuD", "readv": "dpd", "writev": "dpd",
    "mremap": "pxxxp", "madvise": "pxd", "getpid": "", "getppid": "", "gettid": "",
    "exit": "d", "exit_group": "d", "uname": "p", "arch_prctl": "xp",
    "set_tid_address": "p", "set_robust_list": "pu", "prlimit64": "ddpp",
    "getrlimit": "dp", "setrlimit": "dp", "clock_gettime": "dp", "clock_getres": "dp",
    "gettimeofday": "pp", "time": "p", "nanosleep": "pp", "clock_nanosleep": "ddpp",
    "getrandom": "pux", "getuid": "", "geteuid": "", "getgid": "", "getegid": "",
    "sched_yield": "", "open": "sxo", "openat": "dsxo", "stat": "sp", "lstat": "sp",
    "access": "sx", "execve": "spp", "rt_sigaction": "dppu", "rt_sigprocmask": "dppu",
    # files (fs/syscalls.py, fs/path_syscalls.py)
    "creat": "so", "newfstatat": "dspx", "statx": "dsxxp", "faccessat": "dsx", "faccessat2": "dsxx",
    "getdents64": "dpu", "getcwd": "pu", "chdir": "s", "fchdir": "d", "umask": "o",
    "mkdir": "so", "mkdirat": "dso", "rmdir": "s", "unlink": "s", "unlinkat": "dsx",
    "rename": "ss", "renameat": "dsds", "renameat2": "dsdsx", "link": "ss", "linkat": "dsdsx",
    "symlink": "ss", "symlinkat": "sds", "readlink": "spu", "readlinkat": "dspu",
    "chmod": "so", "fchmod": "do", "fchmodat": "dso", "chown": "sdd", "fchown": "ddd",
    "lchown": "sdd", "fchownat": "dsddx", "truncate": "sD", "ftruncate": "dD", "fsync": "d",
    "fdatasync": "d", "sync": "", "syncfs": "d", "dup": "d", "dup2": "dd", "dup3": "ddx",
    "fcntl": "ddx", "utimensat": "dspx", "msync": "pxx",
}
_PROT = ((1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC"))
_MAP = ((0x01, "MAP_SHARED"), (0x02, "MAP_PRIVATE"), (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"),
        (0x4000, "MAP_NORESERVE"), (0x20000, "MAP_STACK"), (0x100000, "MAP_FIXED_NOREPLACE"))
_SHOW = 32


def _s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _flags(value, names, zero):
    parts = [name for bit, name in names if value & bit]
    rest = value & ~sum(bit for bit, _ in names)
    if rest:
        parts.append("%#x" % rest)
    return "|".join(parts) or zero


def _quote(data: bytes, more: bool) -> str:
    text = "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else
                   {10: "\\n", 9: "\\t", 13: "\\r", 34: '\\"', 92: "\\\\"}.get(c, "\\x%02x" % c) for c in data)
    return '"%s"%s' % (text, "..." if more else "")


def _arg(kind, value, following):
    if kind == "d":
        return str(_s32(value))
    if kind == "D":
        return str(value - (1 << 64) if value >> 63 else value)
    if kind == "u":
        return str(value)
    if kind == "o":
        return "%#o" % value
    if kind == "P":
        return _flags(value, _PROT, "PROT_NONE")
    if kind == "M":
        return _flags(value, _MAP, "0")
    if value == 0 and kind in "psb":
        return "NULL"
    try:
        if kind == "s":
            return _quote(user_mem.read_cstring(value, 4096)[:256], False)
        if kind == "b":
            data = user_mem.read(value, min(following, _SHOW))
            return _quote(data, following > _SHOW)
    except Exception:  # noqa: BLE001 - a bad pointer shows as a number
        pass
    return "%#x" % value


def format_call(name: str, args) -> str:
    kinds = SIGNATURES.get(name)
    if kinds is None:
        shown = ["%#x" % a for a in args]
    else:
        shown = [_arg(kind, args[i], args[i + 1] if i + 1 < len(args) else 0) for i, kind in enumerate(kinds)]
    return "%s(%s)" % (name, ", ".join(shown))


def format_result(name: str, args, result) -> str:
    if result is None:
        return "?"
    if -4096 < result < 0:
        return "-1 %s" % ERRNO_NAMES.get(-result, str(-result))
    if name in ("mmap", "brk", "mremap") or result > 0xFFFF:
        return "%#x" % result
    return str(result)
