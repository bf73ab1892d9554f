"""Futexes (Occlum's process/do_futex): wait queues keyed by a user address.

All LibOS processes share one address space, so a futex's key is its address, and
FUTEX_PRIVATE_FLAG changes nothing. A waiter parks on the address's WaitQueue with its
bitset; a wake completes its futex call with 0 (it is not re-executed), a timeout with
-ETIMEDOUT.
"""
import time

from .. import log, sched
from ..errno import EAGAIN, EINVAL, ENOSYS, ETIMEDOUT, SysError
from ..syscall.args import s32, u32
from ..vm import user_mem
from . import current, lifecycle

FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 6, 7, 8, 9, 10
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
FUTEX_WAITERS, FUTEX_OWNER_DIED, FUTEX_TID_MASK = 0x80000000, 0x40000000, 0x3FFFFFFF
ROBUST_LIST_LIMIT = 2048          # Linux's bound on a robust list walk
CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
INT_MAX = 0x7FFFFFFF



def _table():
    """The futex queues of this enclave run: {address: WaitQueue}, kept with the
    process table so that every boot starts empty."""
    return lifecycle.table().futexes


def _queue(addr: int):
    queues = _table()
    queue = queues.get(addr)
    if queue is None:
        queue = queues[addr] = sched.WaitQueue("futex %#x" % addr)
    return queue


def _load(addr: int) -> int:
    if addr & 3:
        raise SysError(EINVAL)
    return user_mem.read_struct("<I", addr)[0]


def wake(addr: int, count: int, bitset: int = FUTEX_BITSET_MATCH_ANY) -> int:
    queues = _table()
    queue = queues.get(addr)
    if queue is None:
        return 0
    woken = queue.wake(count, 0, lambda t: t.futex_bitset & bitset)
    if not queue.waiters:
        queues.pop(addr, None)
    return woken


def _deadline(timeout_ptr: int, absolute: bool, clock: int):
    """The host CLOCK_MONOTONIC deadline (ns) of a futex timeout."""
    if not timeout_ptr:
        return None
    sec, nsec = user_mem.read_struct("<qq", timeout_ptr)
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SysError(EINVAL)
    ns = sec * 1_000_000_000 + nsec
    now = time.monotonic_ns()
    if absolute:
        return now + (ns - time.clock_gettime_ns(clock))
    return now + ns


def _wait(addr, val, timeout_ptr, bitset, absolute, clock):
    if bitset == 0:
        raise SysError(EINVAL)
    if _load(addr) != u32(val):
        raise SysError(EAGAIN)
    deadline = _deadline(timeout_ptr, absolute, clock)
    if deadline is not None and deadline <= time.monotonic_ns():
        raise SysError(ETIMEDOUT)
    current.thread.futex_bitset = bitset
    raise sched.Block([_queue(addr)], deadline, timeout_result=-ETIMEDOUT)


def _requeue(addr, nr_wake, nr_requeue, addr2, cmpval=None):
    if cmpval is not None and _load(addr) != u32(cmpval):
        raise SysError(EAGAIN)
    if s32(nr_wake) < 0 or s32(nr_requeue) < 0:
        raise SysError(EINVAL)
    woken = wake(addr, s32(nr_wake))
    queues = _table()
    queue = queues.get(addr)
    moved = queue.move_to(_queue(addr2), s32(nr_requeue)) if queue is not None else 0
    if queue is not None and not queue.waiters:
        queues.pop(addr, None)
    return woken + moved


_OPS = (lambda old, arg: arg, lambda old, arg: old + arg, lambda old, arg: old | arg,
        lambda old, arg: old & ~arg, lambda old, arg: old ^ arg)
_CMPS = (lambda a, b: a == b, lambda a, b: a != b, lambda a, b: a < b, lambda a, b: a <= b,
         lambda a, b: a > b, lambda a, b: a >= b)


def _wake_op(addr, nr_wake, nr_wake2, addr2, encoded):
    """FUTEX_WAKE_OP: *addr2 = op(*addr2, oparg); wake addr; wake addr2 if the old
    value compares true (one enclave, one CPU: the read-modify-write is atomic)."""
    encoded = u32(encoded)
    op, cmp = (encoded >> 28) & 7, (encoded >> 24) & 15
    oparg, cmparg = (encoded >> 12) & 0xFFF, encoded & 0xFFF
    if encoded >> 31:                 # FUTEX_OP_OPARG_SHIFT
        oparg = 1 << (oparg & 31)
    if op >= len(_OPS) or cmp >= len(_CMPS):
        raise SysError(ENOSYS)
    old = _load(addr2)
    user_mem.write_struct("<I", addr2, _OPS[op](old, oparg) & 0xFFFFFFFF)
    woken = wake(addr, s32(nr_wake))
    if _CMPS[cmp](s32(old), cmparg if cmparg < 0x800 else cmparg - 0x1000):
        woken += wake(addr2, s32(nr_wake2))
    return woken


def sys_futex(uaddr, op, val, timeout, uaddr2, val3):
    op = u32(op)
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    clock = CLOCK_REALTIME if op & FUTEX_CLOCK_REALTIME else CLOCK_MONOTONIC
    if op & FUTEX_CLOCK_REALTIME and cmd not in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        raise SysError(ENOSYS)
    if cmd == FUTEX_WAIT:
        # the timeout is relative (FUTEX_CLOCK_REALTIME only picks the clock)
        return _wait(uaddr, val, timeout, FUTEX_BITSET_MATCH_ANY, False, clock)
    if cmd == FUTEX_WAIT_BITSET:
        return _wait(uaddr, val, timeout, u32(val3), True, clock)
    if cmd == FUTEX_WAKE:
        return wake(uaddr, max(0, s32(val)))
    if cmd == FUTEX_WAKE_BITSET:
        if u32(val3) == 0:
            raise SysError(EINVAL)
        return wake(uaddr, max(0, s32(val)), u32(val3))
    # for the requeue and wake_op forms the "timeout" argument is a count (val2)
    if cmd == FUTEX_REQUEUE:
        return _requeue(uaddr, val, min(timeout, INT_MAX), uaddr2)
    if cmd == FUTEX_CMP_REQUEUE:
        return _requeue(uaddr, val, min(timeout, INT_MAX), uaddr2, val3)
    if cmd == FUTEX_WAKE_OP:
        return _wake_op(uaddr, val, min(timeout, INT_MAX), uaddr2, val3)
    log.warn_once(("futex", cmd), "futex operation %d (PI futexes, FUTEX_FD) is not supported: ENOSYS", cmd)
    raise SysError(ENOSYS)


def exit_robust_list(thread) -> None:
    """At thread exit, every robust mutex it still holds is marked FUTEX_OWNER_DIED
    and one waiter woken (set_robust_list's contract)."""
    head, _length = thread.robust_list
    if not head or thread is not current.thread:
        return
    try:
        first, offset, pending = user_mem.read_struct("<QqQ", head)
        entry, seen = first, 0
        while entry != head and entry and seen < ROBUST_LIST_LIMIT:
            (following,) = user_mem.read_struct("<Q", entry)
            _owner_died(entry + offset, thread.tid)
            entry, seen = following, seen + 1
        if pending:
            _owner_died(pending + offset, thread.tid)
    except SysError:
        pass                          # a broken list is the program's problem: stop walking


def _owner_died(addr: int, tid: int) -> None:
    word = _load(addr)
    if word & FUTEX_TID_MASK != tid:
        return
    user_mem.write_struct("<I", addr, (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
    if word & FUTEX_WAITERS:
        wake(addr, 1)
