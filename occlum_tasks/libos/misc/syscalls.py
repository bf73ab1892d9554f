"""uname, getrandom, sysinfo and sched_getaffinity."""
import os
import socket
import time

from ..errno import EINVAL, SysError
from ..syscall.args import u32
from .. import vm
from ..process import lifecycle
from ..vm import user_mem

GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4
_UTS_FIELD = 65


def _utsname() -> bytes:
    fields = ("Linux", socket.gethostname(), "5.15.0-occlum", "#1 SMP occlum-py", "x86_64", "(none)")
    return b"".join(f.encode()[:_UTS_FIELD - 1].ljust(_UTS_FIELD, b"\0") for f in fields)


def sys_uname(buf):
    user_mem.write(buf, _utsname())
    return 0


def sys_getrandom(buf, length, flags):
    if u32(flags) & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE):
        raise SysError(EINVAL)
    length = min(length, 33554431)      # Linux returns at most this much per call
    dest = user_mem.view(buf, length, writable=True)
    dest[:] = os.urandom(length)
    return length


# struct sysinfo: uptime, loads[3], totalram, freeram, sharedram, bufferram, totalswap,
# freeswap, procs (+pad), totalhigh, freehigh, mem_unit (+pad): 112 bytes
SYSINFO_FORMAT = "<q3Q6QH6x2QI4x"
_BOOT_TIME = time.monotonic()


def sys_sysinfo(info):
    space = vm.space()
    procs = len(lifecycle.table().processes)
    user_mem.write_struct(SYSINFO_FORMAT, info, int(time.monotonic() - _BOOT_TIME), 0, 0, 0,
                          space.size, space.free_bytes, 0, 0, 0, 0, procs, 0, 0, 1)
    return 0


def sys_sched_getaffinity(pid, size, mask):
    # the enclave's threads share the host's CPUs; report those the host gives us
    cpus = os.sched_getaffinity(0)
    nbytes = (max(cpus) // 64 + 1) * 8
    if size < nbytes or size % 8:
        raise SysError(EINVAL)
    bits = sum(1 << c for c in cpus)
    user_mem.write(mask, bits.to_bytes(nbytes, "little"))
    return nbytes


SYSCALLS = {"uname": sys_uname, "getrandom": sys_getrandom, "sysinfo": sys_sysinfo,
            "sched_getaffinity": sys_sched_getaffinity}
