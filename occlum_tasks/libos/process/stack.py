"""The initial stack of a new program (System V x86-64 ABI, as Linux builds it).

From the top: the strings (execfn, environment, arguments), the platform string and
the 16 AT_RANDOM bytes; below them, 16-byte aligned at argc: argc, argv[], NULL,
envp[], NULL, then the auxiliary vector ending with AT_NULL.
"""
import os
import struct

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN = 23, 25, 26, 31

# CPUID.1:EDX of the emulated CPU (cpu.py), which Linux passes as AT_HWCAP on x86
HWCAP = 0x078BFBFD
CLOCK_TICKS = 100


class StackTooSmall(Exception):
    pass


def build_initial_stack(vm, stack_top: int, stack_size: int, program, argv, envp, execfn: str) -> int:
    """Write argv/envp/auxv below `stack_top`; returns the initial stack pointer."""
    # Linux refuses arguments larger than a quarter of the stack (E2BIG)
    limit = stack_size // 4
    blobs = []
    cursor = stack_top - 8          # an 8-byte zero end marker, as Linux leaves

    def push(data: bytes) -> int:
        nonlocal cursor
        cursor -= len(data)
        if stack_top - cursor > limit:
            raise StackTooSmall()
        blobs.append((cursor, data))
        return cursor

    execfn_ptr = push(execfn.encode() + b"\0")
    env_ptrs = [push(_bytes(e) + b"\0") for e in reversed(envp)][::-1]
    arg_ptrs = [push(_bytes(a) + b"\0") for a in reversed(argv)][::-1]
    platform_ptr = push(b"x86_64\0")
    cursor &= ~15
    random_ptr = push(os.urandom(16))

    auxv = [
        (AT_PHDR, program.exe_base + (program.exe.phdr_vaddr or 0)),
        (AT_PHENT, program.exe.phentsize), (AT_PHNUM, program.exe.phnum),
        (AT_PAGESZ, 4096), (AT_BASE, program.interp_base or 0), (AT_FLAGS, 0),
        (AT_ENTRY, program.exe_base + program.exe.entry),
        (AT_UID, 0), (AT_EUID, 0), (AT_GID, 0), (AT_EGID, 0), (AT_SECURE, 0),
        (AT_HWCAP, HWCAP), (AT_HWCAP2, 0), (AT_CLKTCK, CLOCK_TICKS),
        (AT_PLATFORM, platform_ptr), (AT_RANDOM, random_ptr), (AT_EXECFN, execfn_ptr),
        (AT_NULL, 0),
    ]
    words = [len(argv)] + arg_ptrs + [0] + env_ptrs + [0] + [v for pair in auxv for v in pair]
    sp = (cursor - 8 * len(words)) & ~15
    if stack_top - sp > limit:
        raise StackTooSmall()
    vm.write_image(sp, struct.pack("<%dQ" % len(words), *words))
    for addr, data in blobs:
        vm.write_image(addr, data)
    return sp


def _bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
