"""procfs at /proc (Occlum's ProcFS): files made from the LibOS's state when opened.

/proc: self, cpuinfo, meminfo, stat, mounts, and a folder per process:
<pid>/{cmdline, comm, cwd, exe, fd/, maps, root, stat}. <pid>/fd/N are "magic" links:
readlink shows the file's path, and following one reaches the open file itself (as on
Linux), which is what makes /dev/stdout and /dev/fd/3 work whatever they are.
"""
import posixpath

from .. import vm
from ..errno import EACCES, ENOENT, SysError
from ..process import current, lifecycle
from .vfs import S_IFDIR, S_IFLNK, S_IFREG, BytesHandle, DirHandle, FileSystem, Inode, Metadata

PAGE = 4096


class ProcFs(FileSystem):
    name = "proc"
    magic = 0x9FA0           # PROC_SUPER_MAGIC

    def __init__(self, dev: int, vfs_of):
        self.dev = dev
        self.vfs_of = vfs_of       # () -> the VFS, to resolve /proc/<pid>/exe
        self._inos = {}

    def ino(self, key) -> int:
        ino = self._inos.get(key)
        if ino is None:
            ino = self._inos[key] = len(self._inos) + 1
        return ino

    def root(self):
        return ProcDir(self, ("root",), _root_entries)


def _processes():
    table = lifecycle.table()
    return {} if table is None else table.processes


def _process(pid):
    process = _processes().get(pid)
    if process is None or process.exited:
        raise SysError(ENOENT)
    return process


class ProcNode(Inode):
    kind, perm = S_IFREG, 0o444

    def __init__(self, fs, key):
        self.fs, self.key = fs, key

    def metadata(self) -> Metadata:
        return Metadata(self.fs.ino(self.key), self.kind | self.perm, 0,
                        2 if self.kind == S_IFDIR else 1, dev=self.fs.dev)

    def mode(self) -> int:
        return self.kind | self.perm


class ProcDir(ProcNode):
    kind, perm = S_IFDIR, 0o555

    def __init__(self, fs, key, entries):
        super().__init__(fs, key)
        self.entries = entries       # (fs, key) -> {name: () -> inode}

    def lookup(self, name):
        make = self.entries(self.fs, self.key).get(name)
        if make is None:
            raise SysError(ENOENT)
        return make()

    def readdir(self):
        out = []
        for name, make in self.entries(self.fs, self.key).items():
            try:
                inode = make()
                out.append((name, inode.metadata().ino, inode.kind >> 12))
            except SysError:
                continue          # gone meanwhile (an fd closed, a process exited)
        return out

    def open(self, flags):
        return DirHandle(self)


class ProcFile(ProcNode):
    def __init__(self, fs, key, content):
        super().__init__(fs, key)
        self.content = content       # () -> bytes

    def open(self, flags):
        if flags & 3:
            raise SysError(EACCES)
        return BytesHandle(self, self.content())


class ProcLink(ProcNode):
    kind, perm = S_IFLNK, 0o777

    def __init__(self, fs, key, target, magic=None):
        super().__init__(fs, key)
        self.target, self.magic = target, magic

    def readlink(self):
        return self.target()

    def magic_target(self):
        return self.magic() if self.magic else None


# ---- /proc ----------------------------------------------------------------------------
def _root_entries(fs, key):
    entries = {
        "self": lambda: ProcLink(fs, ("self",), lambda: str(current.thread.process.pid)),
        "cpuinfo": lambda: ProcFile(fs, ("cpuinfo",), cpuinfo),
        "meminfo": lambda: ProcFile(fs, ("meminfo",), meminfo),
        "stat": lambda: ProcFile(fs, ("stat",), _kernel_stat),
        "mounts": lambda: ProcFile(fs, ("mounts",), lambda: _mounts(fs)),
    }
    for pid in sorted(_processes()):
        entries[str(pid)] = (lambda pid=pid: _pid_dir(fs, pid))
    return entries


def _pid_dir(fs, pid):
    _process(pid)
    return ProcDir(fs, ("pid", pid), _pid_entries)


def _pid_entries(fs, key):
    pid = key[1]
    _process(pid)
    return {
        "cmdline": lambda: ProcFile(fs, key + ("cmdline",), lambda: _cmdline(_process(pid))),
        "comm": lambda: ProcFile(fs, key + ("comm",), lambda: (_comm(_process(pid)) + "\n").encode()),
        "stat": lambda: ProcFile(fs, key + ("stat",), lambda: _pid_stat(_process(pid))),
        "maps": lambda: ProcFile(fs, key + ("maps",), lambda: _maps(fs, _process(pid))),
        "exe": lambda: ProcLink(fs, key + ("exe",), lambda: _exe(fs, _process(pid))),
        "cwd": lambda: ProcLink(fs, key + ("cwd",), lambda: _cwd(_process(pid)).path,
                                lambda: _loc_tuple(_cwd(_process(pid)))),
        "root": lambda: ProcLink(fs, key + ("root",), lambda: "/"),
        "fd": lambda: ProcDir(fs, key + ("fd",), _fd_entries),
    }


def _fd_entries(fs, key):
    pid = key[1]
    files = _process(pid).files
    entries = {}
    for fd, file in ([] if files is None else files.items()):
        entries[str(fd)] = (lambda fd=fd, file=file: ProcLink(
            fs, key + (fd,), lambda: _fd_label(file), lambda: _loc_tuple(file.loc)))
    return entries


def _loc_tuple(loc):
    return loc.names, loc.inode


def _fd_label(file) -> str:
    label = getattr(file.inode, "label", None)
    return label if label else file.path


def _cwd(process):
    state = getattr(process, "fs", None)
    if state is None:
        raise SysError(ENOENT)
    return state.cwd


def _exe(fs, process) -> str:
    return _real_path(fs, process, process.path)


def _real_path(fs, process, path) -> str:
    """`path` with its links resolved, as Linux shows a program or a mapped file."""
    vfs = fs.vfs_of()
    start = process.fs.cwd if getattr(process, "fs", None) else vfs.root
    try:
        return vfs.resolve(path, start).path
    except SysError:
        return path if path.startswith("/") else posixpath.join(start.path, path)


def _comm(process) -> str:
    return posixpath.basename(process.path)[:15]


def _cmdline(process) -> bytes:
    return b"".join((a if isinstance(a, bytes) else str(a).encode("utf-8", "surrogateescape")) + b"\0"
                    for a in process.argv)


def _pid_stat(process) -> bytes:
    size, _free = vm.usage()
    vsize = sum(end - start for start, end, *_ in vm.maps(process.vm))
    fields = [process.pid, "(%s)" % _comm(process), "R", process.ppid, process.pid, process.pid,
              0, -1, 0x400000, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, len(process.threads), 0, 0,
              vsize, vsize // PAGE, size] + [0] * 27
    return (" ".join(str(f) for f in fields) + "\n").encode()


def _maps(fs, process) -> bytes:
    lines, real = [], {}
    for start, end, prot, kind, name, offset in vm.maps(process.vm):
        perms = "%s%s%sp" % ("r" if prot & 1 else "-", "w" if prot & 2 else "-", "x" if prot & 4 else "-")
        shown = {"stack": "[stack]", "heap": "[heap]"}.get(kind, name)
        if shown and shown[0] != "[":
            if shown not in real:
                real[shown] = _real_path(fs, process, shown)
            shown = real[shown]
        head = "%012x-%012x %s %08x 00:00 0" % (start, end, perms, offset if kind == "file" else 0)
        lines.append(head + (" " * (73 - len(head)) + shown if shown else ""))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _mounts(fs) -> bytes:
    vfs = fs.vfs_of()
    out = []
    for names, mounted in sorted(vfs.mounts.items()):
        out.append("%s /%s %s %s 0 0" % (mounted.name, "/".join(names), mounted.name,
                                         "ro" if mounted.read_only else "rw"))
    return ("\n".join(out) + "\n").encode()


def meminfo() -> bytes:
    total, free = vm.usage()
    rows = (("MemTotal", total), ("MemFree", free), ("MemAvailable", free), ("Buffers", 0),
            ("Cached", 0), ("SwapCached", 0), ("SwapTotal", 0), ("SwapFree", 0),
            ("Shmem", 0))
    return "".join("%-16s%8d kB\n" % (name + ":", value >> 10) for name, value in rows).encode()


def _kernel_stat() -> bytes:
    return (b"cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\nintr 0\nctxt 0\nbtime 0\n"
            b"processes %d\nprocs_running 1\nprocs_blocked 0\n" % len(_processes()))


# ---- /proc/cpuinfo from the CPUID the emulated CPU answers ----------------------------------
_EDX1 = ("fpu vme de pse tsc msr pae mce cx8 apic - sep mtrr pge mca cmov pat pse36 pn "
         "clflush - dts acpi mmx fxsr sse sse2 ss ht tm ia64 pbe").split()
_ECX1 = ("pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 cid sdbg fma cx16 xtpr "
         "pdcm - pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave "
         "osxsave avx f16c rdrand hypervisor").split()
_EBX7 = ("fsgsbase tsc_adjust sgx bmi1 hle avx2 - smep bmi2 erms invpcid rtm pqm - mpx "
         "rdt_a avx512f avx512dq rdseed adx smap avx512ifma - clflushopt clwb - avx512pf "
         "avx512er avx512cd sha_ni avx512bw avx512vl").split()
_EDX_EXT = {11: "syscall", 20: "nx", 26: "pdpe1gb", 27: "rdtscp", 29: "lm"}
_ECX_EXT = {0: "lahf_lm", 5: "abm", 8: "3dnowprefetch"}


def _bits(value, names):
    if isinstance(names, dict):
        return [n for bit, n in sorted(names.items()) if value >> bit & 1]
    return [n for bit, n in enumerate(names) if value >> bit & 1 and n != "-"]


def _cpuid_table():
    # The table the CPU answers the guest's CPUID from; read here so that the two can
    # never disagree.
    from .. import cpuid
    return cpuid.cpuid_table()


def cpuinfo() -> bytes:
    table = _cpuid_table()
    eax1, _ebx1, ecx1, edx1 = table.get((1, 0), (0, 0, 0, 0))
    ebx7 = table.get((7, 0), (0, 0, 0, 0))[1]
    ext = table.get((0x80000001, 0), (0, 0, 0, 0))
    brand = b"".join(w.to_bytes(4, "little") for leaf in (0x80000002, 0x80000003, 0x80000004)
                     for w in table.get((leaf, 0), (0, 0, 0, 0))).rstrip(b"\0").decode("ascii", "replace")
    vendor = b"".join(w.to_bytes(4, "little") for w in (table[(0, 0)][1], table[(0, 0)][3], table[(0, 0)][2]))
    family = (eax1 >> 8) & 0xF
    model = ((eax1 >> 4) & 0xF) | (((eax1 >> 16) & 0xF) << 4 if family in (6, 15) else 0)
    flags = _bits(edx1, _EDX1) + _bits(ecx1, _ECX1) + _bits(ebx7, _EBX7) \
        + _bits(ext[3], _EDX_EXT) + _bits(ext[2], _ECX_EXT)
    rows = (("processor", 0), ("vendor_id", vendor.decode("ascii", "replace")), ("cpu family", family),
            ("model", model), ("model name", brand), ("stepping", eax1 & 0xF),
            ("cache size", "8192 KB"), ("physical id", 0), ("siblings", 1), ("core id", 0),
            ("cpu cores", 1), ("fpu", "yes"), ("fpu_exception", "yes"), ("cpuid level", table[(0, 0)][0]),
            ("wp", "yes"), ("flags", " ".join(flags)), ("clflush size", 64),
            ("cache_alignment", 64), ("address sizes", "48 bits physical, 48 bits virtual"))
    return ("".join("%s\t: %s\n" % (name, value) for name, value in rows) + "\n").encode()
