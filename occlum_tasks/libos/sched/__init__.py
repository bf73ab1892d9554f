"""The scheduler: puts threads on the one CPU and takes them off.

For now every process has one thread and the first process runs to its end; the
shape is the one threads will need: a thread's context is saved here when it leaves
the CPU, and `run` is the only place that calls `Cpu.run`. (Preemption will come from
a watchdog thread calling `Cpu.stop`: the GIL is released inside `emu_start`.)
"""
from ..process import current

_cpu = None


def boot(cpu) -> None:
    global _cpu
    _cpu = cpu


def shutdown() -> None:
    global _cpu
    _cpu = None
    current.set(None)


def cpu():
    return _cpu


def stop_current() -> None:
    """The current thread leaves the CPU after this system call (exit, block...)."""
    _cpu.stop()


def set_fs_base(value: int) -> None:
    _cpu.set_fs_base(value)
    current.thread.fs_base = value


def get_fs_base() -> int:
    return _cpu.get_fs_base()


def run(thread):
    """Run `thread` until it leaves the CPU for good or faults; returns the cpu.Stop."""
    current.set(thread)
    _cpu.set_sp(thread.sp)
    _cpu.set_fs_base(thread.fs_base)
    pc = thread.pc
    while True:
        stop = _cpu.run(pc)
        if thread.exited or stop.kind != "stopped":
            return stop
        pc = _cpu.pc    # stopped for another reason: carry on where it was
