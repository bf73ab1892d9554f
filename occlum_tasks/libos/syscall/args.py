"""Helpers for handlers: registers arrive as unsigned 64-bit integers."""


def s32(value: int) -> int:
    """The low 32 bits as a signed int (fds, AT_FDCWD, pids)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def s64(value: int) -> int:
    return value - (1 << 64) if value & (1 << 63) else value


def u32(value: int) -> int:
    return value & 0xFFFFFFFF
