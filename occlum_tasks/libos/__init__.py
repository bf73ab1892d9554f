"""The emulated enclave: a LibOS in Python over one Unicorn CPU (DESIGN.md section 7).

The entry point is `enclave.run_program`. Subsystems mirror Occlum's source tree: a
folder each (vm, process, fs, time, misc), each owning its system calls in its own
`syscalls.py`; `syscall.table` gathers them into the one dispatch table.
"""
