"""Clocks and sleeping, from the host (as Occlum, which asks the untrusted host)."""
import time

from .. import sched
from ..errno import EINVAL, SysError
from ..syscall.args import s32, s64
from ..vm import user_mem

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID = 0, 1, 2, 3
CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME = 4, 5, 6, 7
TIMER_ABSTIME = 1
_HOST_CLOCKS = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME}


def _now_ns(clock: int) -> int:
    if clock in _HOST_CLOCKS:
        return time.clock_gettime_ns(clock)
    if clock == CLOCK_PROCESS_CPUTIME_ID:
        return time.process_time_ns()      # the enclave's CPU time: one host process
    if clock == CLOCK_THREAD_CPUTIME_ID:
        return time.thread_time_ns()
    raise SysError(EINVAL)


def _write_timespec(addr, ns):
    user_mem.write_struct("<qq", addr, ns // 1_000_000_000, ns % 1_000_000_000)


def sys_clock_gettime(clock, tp):
    _write_timespec(tp, _now_ns(s32(clock)))
    return 0


def sys_clock_getres(clock, res):
    clock = s32(clock)
    _now_ns(clock)   # EINVAL for an unknown clock
    if res:
        coarse = clock in (CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE)
        _write_timespec(res, 4_000_000 if coarse else 1)
    return 0


def sys_gettimeofday(tv, tz):
    ns = time.clock_gettime_ns(CLOCK_REALTIME)
    if tv:
        user_mem.write_struct("<qq", tv, ns // 1_000_000_000, (ns // 1000) % 1_000_000)
    if tz:
        user_mem.write_struct("<ii", tz, 0, 0)    # UTC, no DST
    return 0


def sys_time(tloc):
    seconds = time.clock_gettime_ns(CLOCK_REALTIME) // 1_000_000_000
    if tloc:
        user_mem.write_struct("<q", tloc, seconds)
    return seconds


def _read_timespec(addr):
    sec, nsec = user_mem.read_struct("<qq", addr)
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SysError(EINVAL)
    return sec * 1_000_000_000 + nsec


def _sleep_ns(ns):
    """Sleep `ns`: on the host when the thread is alone in the enclave (nothing else
    to run), else parked with a deadline while the others run."""
    if ns <= 0:
        return
    if sched.alone():
        time.sleep(ns / 1e9)
        return
    raise sched.Block((), time.monotonic_ns() + ns, timeout_result=0, what="a sleep")


def sys_nanosleep(req, rem):
    ns = _read_timespec(req)
    if rem:
        _write_timespec(rem, 0)
    _sleep_ns(ns)
    return 0


def sys_clock_nanosleep(clock, flags, req, rem):
    clock = s32(clock)
    if clock not in (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME):
        raise SysError(EINVAL)
    ns = _read_timespec(req)
    if s64(flags) & TIMER_ABSTIME:
        ns -= time.clock_gettime_ns(clock)
    _sleep_ns(ns)
    return 0


SYSCALLS = {
    "clock_gettime": sys_clock_gettime, "clock_getres": sys_clock_getres,
    "gettimeofday": sys_gettimeofday, "time": sys_time,
    "nanosleep": sys_nanosleep, "clock_nanosleep": sys_clock_nanosleep,
}
