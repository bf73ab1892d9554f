"""Unicorn configuration experiments for the memory-bound gap (DESIGN.md section 8).

Runs the same musl binaries on the bare harness (bench/bare_unicorn.py, no LibOS) under
each TLB mode, memory-hook set-up, W^X choice and memory backing, and prints CPU
seconds inside emu_start (best of N) per program:

  sieve   5 MB byte sieve x4: store bound, stores spread over 1,221 pages
  alu     register-only hash loop: no memory traffic
  calls   recursive fib: the stack page is written and read in turn
  syscall getppid loop: the SYSCALL hook path

    python bench/unicorn_layouts.py [--repeat 3] [--only sieve,calls] [--variants a,b]

The binaries are compiled once with occlum-gcc into a cache folder (bench/.cache).
Figures are printed, never asserted.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bare_unicorn import run_bare  # noqa: E402
from libos import compile_programs, load_note  # noqa: E402

PROGRAMS = {"sieve": ("sieve", ["4"]), "alu": ("alu", ["100000000"]), "calls": ("calls", ["32"]),
            "syscall": ("getppid", ["200000"])}

# name -> (knobs, what it shows); "libos" is what occlum_tasks/libos/cpu.py now does
VARIANTS = {
    "before": (dict(tlb="cpu", invalid="all", regrow=0),
               "default TLB + UC_HOOK_MEM_INVALID over everything (the LibOS until now)"),
    "before rwx": (dict(tlb="cpu", invalid="all", wx=False, regrow=0), "the same with every page RWX"),
    "before tlb8k": (dict(tlb="cpu", invalid="all", tlb_bits=13, regrow=0),
                     "the same with the TLB grown to 8192 entries"),
    "cpu": (dict(tlb="cpu", invalid="none", regrow=0), "default TLB, no memory hook"),
    "virtual+hook": (dict(tlb="virtual", invalid="all", regrow=0),
                     "UC_TLB_VIRTUAL, no fill hook, UC_HOOK_MEM_INVALID over everything"),
    "virtual+outside": (dict(tlb="virtual", invalid="outside", regrow=0),
                        "UC_TLB_VIRTUAL, no fill hook, MEM_INVALID only outside the guest block"),
    "virtual": (dict(tlb="virtual", invalid="none", regrow=0),
                "UC_TLB_VIRTUAL, no hook: each entry has only the permission that filled it"),
    "fill": (dict(tlb="pyfill", regrow=0), "UC_TLB_VIRTUAL + Python fill hook (real perms), TLB never flushed"),
    "fill tlb8k": (dict(tlb="pyfill", tlb_bits=13, regrow=0), "the same, TLB grown to 8192 entries first"),
    "libos": (dict(tlb="pyfill", regrow=4096), "fill hook + a flush after 4096 fills (the TLB grows)"),
    "libos rwx": (dict(tlb="pyfill", regrow=4096, wx=False), "the LibOS's choice with every page RWX"),
    "libos uc-mem": (dict(tlb="pyfill", regrow=4096, backing="uc"),
                     "the LibOS's choice on Unicorn-allocated memory (uc_mem_map)"),
    "libos +200": (dict(tlb="pyfill", regrow=4096, extra=200),
                   "the LibOS's choice with 200 unrelated regions mapped"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=",".join(PROGRAMS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    names = args.only.split(",")
    binaries = compile_programs(sorted({PROGRAMS[n][0] for n in names}))
    print(load_note())
    print("CPU seconds inside emu_start, best of %d (bare harness, no LibOS)" % args.repeat)
    print("%-16s" % "variant" + "".join("%10s" % n for n in names))
    print("-" * (16 + 10 * len(names)))
    for variant in args.variants.split(","):
        knobs, _ = VARIANTS[variant]
        cells = []
        for name in names:
            prog, prog_args = PROGRAMS[name]
            best = None
            for _ in range(args.repeat):
                status, _out, seconds = run_bare(str(binaries[prog]), prog_args, **knobs)
                if status != 0:
                    best = None
                    break
                best = seconds if best is None else min(best, seconds)
            cells.append("%10s" % ("fail" if best is None else "%.3f" % best))
        print("%-16s" % variant + "".join(cells), flush=True)
    print()
    for variant in args.variants.split(","):
        print("  %-16s %s" % (variant, VARIANTS[variant][1]))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
