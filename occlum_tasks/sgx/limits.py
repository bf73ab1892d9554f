"""How much address space an enclave takes, and the most it may take.

Shared by the layout (which refuses a layout beyond the limits) and the Occlum.json
checks (which say so at the line of the field, before anything is built).

MAX_ENCLAVE_SIZE: an enclave's size (ELRANGE) is a power of two; the SGX SDK's signer
refuses an enclave of 0x1F_FFFF_FFFF bytes or more, so 64 GiB is the largest one an
Occlum (built by the SDK) can be, and it is also the MaxEnclaveSize_64 (2^36) that many
SGX CPUs report. The measurement hashes a 64-byte EADD record per page: 64 GiB is 1 GiB
of records, about a second of SHA-256, which `occlum run` repeats at every start.

MAX_THREADS: SGX bounds threads only through ELRANGE (each takes a TCS, SSA frames and
a kernel stack, at least 24 KiB); Occlum has no cap of its own. occlum-py caps them at
65,536, where measuring the thread area still takes about a second.
"""

PAGE_SIZE = 4096
# One SSA frame holds the GPRs plus the XSAVE area; with XFRM = x87|SSE (0x3) the
# legacy XSAVE area (512 + 64 bytes) and GPRSGX fit in one page, as the SGX SDK sizes it.
SSA_FRAME_SIZE = 1
# Two frames per thread, as the SDK gives each TCS, so that an exception raised while
# the first frame is in use (nested AEX) still has somewhere to go.
NSSA = 2

MAX_ENCLAVE_SIZE = 64 << 30
MAX_THREADS = 65536


def pages_for(size: int) -> int:
    return -(-size // PAGE_SIZE)


def format_bytes(value: int) -> str:
    """A size for a message, in the largest unit it reaches: "64GB", "1.5MB", "100TB"."""
    for unit, shift in (("TB", 40), ("GB", 30), ("MB", 20), ("KB", 10)):
        if value >= 1 << shift:
            text = f"{value / (1 << shift):.1f}".removesuffix(".0")
            return ("" if value % (1 << shift) == 0 else "about ") + text + unit
    return f"{value}B"


def thread_slot_pages(kernel_space_stack_size: int, nssa: int = NSSA,
                      ssa_frame_size: int = SSA_FRAME_SIZE) -> int:
    """Pages of one thread's slot: guard, TCS, SSA frames, guard, kernel stack."""
    return 3 + nssa * ssa_frame_size + pages_for(kernel_space_stack_size)


def enclave_extent(*, manifest_size: int, kernel_space_heap_max_size: int,
                   kernel_space_stack_size: int, max_num_of_threads: int,
                   user_space_max_size: int, nssa: int = NSSA,
                   ssa_frame_size: int = SSA_FRAME_SIZE) -> dict:
    """Bytes of address space each part of the layout takes (the arithmetic of
    _derive_areas, without building anything): keys "runtime", "kernel_heap",
    "threads", "user_space", "total"."""
    parts = {
        # manifest, config page, guard
        "runtime": (pages_for(manifest_size) + 2) * PAGE_SIZE,
        "kernel_heap": pages_for(kernel_space_heap_max_size) * PAGE_SIZE,
        "threads": max_num_of_threads * thread_slot_pages(kernel_space_stack_size, nssa,
                                                          ssa_frame_size) * PAGE_SIZE,
        # the guard below user space
        "user_space": (1 + pages_for(user_space_max_size)) * PAGE_SIZE,
    }
    parts["total"] = sum(parts.values())
    return parts


def size_limit_problem(*, manifest_size: int, kernel_space_heap_max_size: int,
                       kernel_space_stack_size: int, max_num_of_threads: int,
                       user_space_max_size: int, heap_field: str = "kernel_space_heap_size",
                       user_field: str = "user_space_size"):
    """None, or (field, message) when the enclave would exceed a limit. The field blamed
    is the one that takes the most address space; the message names the limit."""
    if max_num_of_threads > MAX_THREADS:
        return ("max_num_of_threads",
                f"{max_num_of_threads} is more than {MAX_THREADS}, the most threads "
                "occlum-py builds (each has a TCS, SSA frames and a kernel stack, which "
                "every launch measures)")
    parts = enclave_extent(manifest_size=manifest_size,
                           kernel_space_heap_max_size=kernel_space_heap_max_size,
                           kernel_space_stack_size=kernel_space_stack_size,
                           max_num_of_threads=max_num_of_threads,
                           user_space_max_size=user_space_max_size)
    if parts["total"] <= MAX_ENCLAVE_SIZE:
        return None
    blame = max(("user_space", "kernel_heap", "threads"), key=lambda k: parts[k])
    # a kernel stack of more than 64MB is the odd one out; else the thread count is
    big_stack = kernel_space_stack_size > 64 << 20 or max_num_of_threads == 1
    field = {"user_space": user_field, "kernel_heap": heap_field,
             "threads": "kernel_space_stack_size" if big_stack else "max_num_of_threads"}[blame]
    detail = (f"kernel heap {format_bytes(parts['kernel_heap'])}, {max_num_of_threads} "
              f"thread{'s' if max_num_of_threads > 1 else ''} of "
              f"{format_bytes(parts['threads'] // max_num_of_threads)} each, user space "
              f"{format_bytes(parts['user_space'] - PAGE_SIZE)}")
    return (field, f"too large: the enclave would span {format_bytes(parts['total'])} ({detail}); an "
                   f"SGX enclave spans at most {format_bytes(MAX_ENCLAVE_SIZE)}, a power of "
                   "two that the SGX SDK's signer accepts")
