"""LibOS benchmark (issue 3): the emulated enclave against native execution, qemu-user
and a bare Unicorn harness, measured in one run and printed as one table with ratios.

  (a) ALU-bound loop (bench/programs/alu.c): goals: the LibOS adds < 10% to bare
      Unicorn running the same binary; about 5x native
  (b) memory-bound loop, a sieve over 5 MB (sieve.c): goal <= 3x qemu-user
  (c) getppid loop, system calls per second (getppid.c): goal >= 250,000/s
  (d) 16 MiB written then read in 4 KiB blocks on the writable layer (fileio.c), in a
      built instance through `occlum run`: goal >= 80 MB/s
  (e) `occlum run /bin/hello_world` end to end, wall time: goal <= 0.35 s
  (f) for information, no goal: mmap + munmap between passes over a 4 MB working set
      (remap.c). Every change of Unicorn's memory map flushes its whole TLB, and the
      LibOS refills it through a Python callback (occlum_tasks/libos/cpu.py)
  (g) posix_spawn + waitpid of a small program (procs.c spawn): goal <= 5 ms a spawn
  (h) 64 MiB through a pipe between two processes, 64 KiB writes (procs.c pipe):
      goal >= 500 MB/s
  (i) for information: futex wake/wait round trips between two threads (procs.c futex)
  (g)-(i) are timed by the program itself, natively and in the enclave (qemu-user and
  the bare harness cannot run several processes).

Every program is compiled once with occlum-gcc -O2 (a dynamic PIE, as Occlum runs
them) and the same binary runs natively, under qemu-user (qemu-x86_64 with the musl
loader), on the bare harness (bench/bare_unicorn.py: Unicorn with only a SYSCALL hook
for exit and write, no LibOS) and in the enclave (run_program over a host folder
holding the binary and the musl loader). (a)-(c) report CPU seconds, best of
--repeat, of the loop alone: the best run with no work (0 rounds) is subtracted, so
that process, interpreter and LibOS start-up do not count. (d) is timed by the program
itself (CLOCK_MONOTONIC around each phase), (e) by wall clock around the command.
The machine is shared: its load average is printed with the results. Figures are
printed, never asserted.

    python bench/libos.py [--repeat 3] [--quick]
"""
import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PROGRAMS = BENCH / "programs"
WORKDIR = BENCH / ".work"
MUSL_LOADER = Path("/lib/ld-musl-x86_64.so.1")
LIMITS = dict(user_space_size=256 << 20, default_stack_size=4 << 20, default_heap_size=32 << 20)

# work sizes: (full run, quick run); the subtracted baseline runs with "0"
WORK = {"alu": (100_000_000, 10_000_000), "sieve": (8, 1), "getppid": (300_000, 30_000), "remap": (1000, 100),
        "spawn": (200, 20), "pipe": (64, 16), "futex": (20_000, 2_000)}
REMAP_PAGES = 1000
FILEIO_MIB = 16
E2E_RUNS = 7


# ---- building -----------------------------------------------------------------------
def compile_programs(names, static=False):
    """Compile bench/programs/<name>.c once with occlum-gcc -O2 (cached by content in
    bench/.work, which git ignores); returns {name: path}."""
    from occlum_tasks.toolchain.gcc import fingerprint
    wrapper = fingerprint()
    cache = WORKDIR / "bin"
    out = {}
    for name in names:
        src = PROGRAMS / (name + ".c")
        flags = ["-O2"] + (["-static-pie"] if static else [])
        key = hashlib.sha256(src.read_bytes() + json.dumps([flags, wrapper]).encode()).hexdigest()[:20]
        binary = cache / key / name
        if not binary.exists():
            binary.parent.mkdir(parents=True, exist_ok=True)
            tmp = binary.with_name(".%s.%d" % (name, os.getpid()))
            proc = subprocess.run([sys.executable, "-m", "occlum_tasks.toolchain.gcc", "-o", str(tmp), str(src),
                                   *flags], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit("occlum-gcc %s failed:\n%s" % (src.name, proc.stderr))
            os.replace(tmp, binary)
        out[name] = binary
    return out


def load_note():
    one, five, fifteen = os.getloadavg()
    return "machine: %d CPUs, load average %.2f %.2f %.2f (1/5/15 min)" % (os.cpu_count(), one, five, fifteen)


# ---- one measurement per way of running a program -------------------------------------
class Result:
    __slots__ = ("seconds", "status", "output")

    def __init__(self, seconds, status, output):
        self.seconds, self.status, self.output = seconds, status, output


def run_child(cmd, cwd=None):
    """Run a host command; CPU seconds (user + system) of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Result(cpu, proc.returncode, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace"))


class Ways:
    """The four ways of running a binary, each returning a Result."""

    def __init__(self, binaries, root, qemu):
        self.binaries, self.root, self.qemu = binaries, root, qemu

    def native(self, name, args):
        return run_child([self.binaries[name], *args])

    def qemu_user(self, name, args):
        return run_child([self.qemu, MUSL_LOADER, self.binaries[name], *args])

    def bare(self, name, args):
        from bare_unicorn import run_bare
        status, out, seconds = run_bare(str(self.binaries[name]), args)
        return Result(seconds, status, out.decode(errors="replace"))

    def enclave(self, name, args):
        """run_program in this process: CPU seconds of the whole run (LibOS boot included)."""
        from occlum_tasks.libos import enclave
        mounts = getattr(enclave, "host_folder_root", None) or enclave.host_folder_opener
        with tempfile.TemporaryFile() as out, open(os.devnull, "rb") as null:
            start = time.process_time()
            status = enclave.run_program(mounts(str(self.root)), "/bin/" + name, ["/bin/" + name, *args], [],
                                         stdio=(null.fileno(), out.fileno(), out.fileno()), log_level="off",
                                         **LIMITS)
            seconds = time.process_time() - start
            out.seek(0)
            return Result(seconds, status, out.read().decode(errors="replace"))


def best(way, name, args, repeat):
    """Best of `repeat` runs; None (and the output) if a run fails."""
    results = [way(name, [str(a) for a in args]) for _ in range(repeat)]
    failed = [r for r in results if r.status != 0]
    if failed:
        return None, failed[0].output
    return min(r.seconds for r in results), results[0].output


# ---- the table ------------------------------------------------------------------------
COLUMNS = ("native", "qemu-user", "bare Unicorn", "enclave")


def loop_times(ways, name, work, repeat, columns, extra=()):
    """{column: CPU seconds of the loop alone} (None when that way failed), outputs."""
    times, outputs = {}, {}
    for column in columns:
        way = {"native": ways.native, "qemu-user": ways.qemu_user, "bare Unicorn": ways.bare,
               "enclave": ways.enclave}[column]
        full, out = best(way, name, [work, *extra], repeat)
        zero, out0 = best(way, name, [0, *extra], repeat)
        if full is None or zero is None:
            times[column] = None
            outputs[column] = (out if full is None else out0).strip().splitlines()[-1:] or ["(no output)"]
        else:
            times[column] = max(full - zero, 1e-9)
            outputs[column] = out.strip().splitlines()[:1]
    return times, outputs


def check_outputs(label, outputs, key=lambda line: line):
    """Warn when a way printed something else than the native run (a wrong result)."""
    native = outputs.get("native")
    for column, lines in outputs.items():
        if native and lines and key(lines[0]) != key(native[0]):
            print("  warning: %s under %s printed %r, native printed %r" % (label, column, lines[0], native[0]))


def fmt_seconds(value):
    return "failed" if value is None else "%.3f s" % value


def fmt_rate(value):
    return "failed" if value is None else "{:,.0f}/s".format(value)


def verdict(ok):
    return "met" if ok else "MISSED"


def ratio(a, b):
    return None if a is None or b is None else a / b


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    ap.add_argument("--quick", action="store_true", help="10x less work: a smoke run, figures are rough")
    args = ap.parse_args()
    sys.path.insert(0, str(BENCH))
    pick = 1 if args.quick else 0
    work = {name: sizes[pick] for name, sizes in WORK.items()}

    import unicorn
    qemu = shutil.which("qemu-x86_64")
    qemu_version = "not installed"
    if qemu:
        qemu_version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print("LibOS benchmark: unicorn %s, %s, Python %s" % (unicorn.__version__, qemu_version,
                                                       sys.version.split()[0]))
    print(load_note())
    columns = list(COLUMNS)
    if not qemu:
        print("qemu-user not installed: apt-get install qemu-user")
        columns.remove("qemu-user")
    binaries = compile_programs(["alu", "sieve", "getppid", "fileio", "hello_world", "remap", "procs"])

    with tempfile.TemporaryDirectory(prefix="occlum-bench-libos-") as tmp:
        tmp = Path(tmp)
        root = tmp / "root"                       # the enclave's / for (a)-(c)
        (root / "bin").mkdir(parents=True)
        (root / "lib").mkdir()
        for name, binary in binaries.items():
            shutil.copy(binary, root / "bin" / name)
        shutil.copy(MUSL_LOADER, root / "lib" / MUSL_LOADER.name)
        ways = Ways(binaries, root, qemu)
        rows = []

        # (a) ALU
        t, outs = loop_times(ways, "alu", work["alu"], args.repeat, columns)
        check_outputs("alu", outs)
        over_bare = ratio(t["enclave"], t["bare Unicorn"])
        over_native = ratio(t["enclave"], t["native"])
        rows.append(("(a) ALU loop, %s rounds" % "{:,}".format(work["alu"]), [fmt_seconds(t.get(c)) for c in COLUMNS],
                     "%s bare, %s native" % (_x(over_bare), _x(over_native)), "< 1.10x bare, ~5x native",
                     verdict(over_bare is not None and over_bare < 1.10), None))

        # (b) sieve
        t, outs = loop_times(ways, "sieve", work["sieve"], args.repeat, columns)
        check_outputs("sieve", outs)
        over_qemu = ratio(t["enclave"], t.get("qemu-user"))
        rows.append(("(b) sieve over 5 MB, x%d" % work["sieve"], [fmt_seconds(t.get(c)) for c in COLUMNS],
                     "%s qemu, %s native" % (_x(over_qemu), _x(ratio(t["enclave"], t["native"]))),
                     "<= 3x qemu-user", verdict(over_qemu is not None and over_qemu <= 3), None))

        # (c) getppid
        t, outs = loop_times(ways, "getppid", work["getppid"], args.repeat, columns)
        check_outputs("getppid", outs, key=lambda line: line.split(" sum")[0])
        rates = {c: (None if t.get(c) is None else work["getppid"] / t[c]) for c in COLUMNS}
        per_call = None if t["enclave"] is None else t["enclave"] / work["getppid"] * 1e6
        rows.append(("(c) getppid, {:,} calls".format(work["getppid"]), [fmt_rate(rates.get(c)) for c in COLUMNS],
                     "-" if per_call is None else "%.2f us a call" % per_call,
                     ">= 250,000/s", verdict(rates["enclave"] is not None and rates["enclave"] >= 250_000), None))

        # (d) and (e) need a built instance
        inst, build_error = build_instance(tmp, binaries)
        rows.append(fileio_row(ways, inst, build_error, tmp, args.repeat, qemu))
        e2e, new_enclave_seconds = e2e_row(ways, inst, build_error, qemu)
        rows.append(e2e)

        # (f) the cost of TLB refills after memory-map changes (the bare harness has no mmap)
        t, outs = loop_times(ways, "remap", work["remap"], args.repeat,
                             [c for c in columns if c != "bare Unicorn"], extra=[REMAP_PAGES])
        check_outputs("remap", outs)
        per_round = None if t["enclave"] is None else t["enclave"] / work["remap"] * 1e6
        rows.append(("(f) mmap+munmap, 4 MB pass, x%d" % work["remap"],
                     [fmt_seconds(t.get(c)) if c != "bare Unicorn" else "-" for c in COLUMNS],
                     "%s qemu; %s a round" % (_x(ratio(t["enclave"], t.get("qemu-user"))),
                                              "-" if per_round is None else "%.0f us" % per_round),
                     "(information)", "", "each mmap and munmap flushes Unicorn's TLB; the working set "
                                          "(1,000 pages) is then refilled through the LibOS's fill hook"))

        rows.extend(procs_rows(ways, work, args.repeat, new_enclave_seconds))

    if "qemu-user" not in columns:
        for row in rows:
            row[1][1] = "-"                       # the qemu-user column, skipped
    print_table(rows)
    print(load_note() + " (after the run)")


def _self_timed(ways, column, args, repeat):
    """The figure a procs.c run prints (its second word), best of `repeat`, or None."""
    way = ways.native if column == "native" else ways.enclave
    figures = []
    for _ in range(repeat):
        result = way("procs", [str(a) for a in args])
        if result.status != 0:
            return None
        try:
            figures.append(float(result.output.split()[1]))
        except (IndexError, ValueError):
            return None
    return figures


def procs_rows(ways, work, repeat, new_enclave_seconds=None):
    """(g) spawn, (h) pipe, (i) futex: rates measured by the program (procs.c). A spawn
    inside the enclave is also compared with starting a new enclave (row e's occlum run),
    which is what Occlum's light-weight processes are for."""
    rows = []
    spawn = {c: _self_timed(ways, c, ["spawn", work["spawn"]], repeat) for c in ("native", "enclave")}
    ms = {c: None if v is None else 1e3 / max(v) for c, v in spawn.items()}
    faster = (None if ms["enclave"] is None or new_enclave_seconds is None
              else new_enclave_seconds * 1e3 / ms["enclave"])
    rows.append(("(g) posix_spawn+wait, x%d" % work["spawn"],
                 [_ms(ms.get(c)) if c in ms else "-" for c in COLUMNS],
                 "%s native; %s faster than a new occlum run" % (
                     _x(ratio(ms["enclave"], ms["native"])), "-" if faster is None else "%.0fx" % faster),
                 "<= 5 ms, >= 50x a new enclave",
                 verdict(ms["enclave"] is not None and ms["enclave"] <= 5
                         and faster is not None and faster >= 50), None))
    pipe = {c: _self_timed(ways, c, ["pipe", work["pipe"]], repeat) for c in ("native", "enclave")}
    mbs = {c: None if v is None else max(v) for c, v in pipe.items()}
    rows.append(("(h) pipe, %d MiB between 2 processes" % work["pipe"],
                 [_mbs(mbs.get(c)) if c in mbs else "-" for c in COLUMNS],
                 "%s native's rate" % _x(ratio(mbs["enclave"], mbs["native"])), ">= 500 MB/s",
                 verdict(mbs["enclave"] is not None and mbs["enclave"] >= 500), None))
    futex = {c: _self_timed(ways, c, ["futex", work["futex"]], repeat) for c in ("native", "enclave")}
    trips = {c: None if v is None else max(v) for c, v in futex.items()}
    rows.append(("(i) futex ping-pong, %s round trips" % "{:,}".format(work["futex"]),
                 [fmt_rate(trips.get(c)) if c in trips else "-" for c in COLUMNS],
                 "%s native's rate" % _x(ratio(trips["enclave"], trips["native"])), "(information)", "",
                 "each round trip is two thread switches, made inside the SYSCALL hook (context save + restore, no emu_stop)"))
    return rows


def _ms(value):
    return "failed" if value is None else "%.2f ms" % value


def _mbs(value):
    return "failed" if value is None else "%.0f MB/s" % value


def _x(value):
    return "-" if value is None else "%.2fx" % value


def occlum(cwd, *args, env=None):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def build_instance(tmp, binaries):
    """`occlum new`, the two programs into image/bin, `occlum build`: the instance, or
    None and why not."""
    _, proc = occlum(tmp, "new", "inst")
    inst = tmp / "inst"
    if proc.returncode != 0:
        return None, "occlum new failed: " + _last_line(proc)
    for name in ("hello_world", "fileio"):
        shutil.copy(binaries[name], inst / "image" / "bin" / name)
    seconds, proc = occlum(inst, "build")
    if proc.returncode != 0:
        return None, "occlum build failed: " + _last_line(proc)
    print("built the instance for (d) and (e) in %.1f s" % seconds)
    return inst, None


def _last_line(proc):
    lines = (proc.stderr + proc.stdout).strip().splitlines()
    return lines[-1] if lines else "exit status %d" % proc.returncode


_FILEIO = re.compile(r"fileio write ([0-9.]+) read ([0-9.]+) bytes (\d+)")


def _fileio_rates(output):
    match = _FILEIO.search(output)
    if not match:
        return None
    write, read, size = float(match.group(1)), float(match.group(2)), int(match.group(3))
    return size / 1e6 / max(write, 1e-9), size / 1e6 / max(read, 1e-9)


def _fmt_rw(rates):
    return "failed" if rates is None else "w %.0f r %.0f MB/s" % rates


def fileio_row(ways, inst, build_error, tmp, repeat, qemu):
    label = "(d) %d MiB file, 4 KiB blocks" % FILEIO_MIB
    goal = ">= 80 MB/s"
    host_file = tmp / "fileio.dat"
    native = _best_rw([ways.native("fileio", [host_file, FILEIO_MIB]).output for _ in range(repeat)])
    emulated = "-"
    if qemu:
        emulated = _fmt_rw(_best_rw([ways.qemu_user("fileio", [host_file, FILEIO_MIB]).output
                                     for _ in range(repeat)]))
    cells = [_fmt_rw(native), emulated, "-"]
    if inst is None:
        return (label, cells + ["-"], "-", goal, "-", "not available yet: " + build_error), None
    outputs = []
    for _ in range(repeat):
        _, proc = occlum(inst, "run", "/bin/fileio", "/root/fileio.dat", FILEIO_MIB)
        if proc.returncode != 0:
            match = re.search(r"open failed: (.*)", proc.stdout)
            reason = match.group(1) if match else _last_line(proc)
            return label, cells + ["-"], "-", goal, "-", "not available yet: " + reason
        outputs.append(proc.stdout)
    rates = _best_rw(outputs)
    ok = rates is not None and min(rates) >= 80
    return (label, cells + [_fmt_rw(rates)], "-", goal, verdict(ok),
            "best of %d, each phase timed by the program (CLOCK_MONOTONIC); the enclave writes to "
            "/root on the writable layer through `occlum run`" % repeat)


def _best_rw(outputs):
    rates = [r for r in map(_fileio_rates, outputs) if r]
    if not rates:
        return None
    return max(w for w, _ in rates), max(r for _, r in rates)


def e2e_row(ways, inst, build_error, qemu):
    label = "(e) occlum run /bin/hello_world"
    goal = "<= 0.35 s"
    # the same program outside the enclave, wall clock, for scale
    native = min(_wall([ways.binaries["hello_world"]]) for _ in range(5))
    emulated = min(_wall([qemu, MUSL_LOADER, ways.binaries["hello_world"]]) for _ in range(5)) if qemu else None
    floor = min(_wall([sys.executable, "-c", "pass"]) for _ in range(5))
    cells = [_fmt_wall(native), "-" if emulated is None else _fmt_wall(emulated), "-"]
    if inst is None:
        return (label, cells + ["-"], "-", goal, "-", "not available yet: " + build_error), None
    walls = {}
    # As this environment runs Python, then with a bytecode cache as a normal install
    # has one (kept in bench/.work, so that the source tree gets no __pycache__).
    cached = dict(os.environ, PYTHONPYCACHEPREFIX=str(WORKDIR / "pycache"))
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    for kind, env in (("as is", None), ("bytecode cache", cached)):
        if kind == "bytecode cache" and not os.environ.get("PYTHONDONTWRITEBYTECODE"):
            break                       # Python writes bytecode here anyway: same figure
        if env is not None:
            occlum(inst, "run", "/bin/hello_world", env=env)          # fill the cache
        walls[kind] = []
        for _ in range(E2E_RUNS):
            seconds, proc = occlum(inst, "run", "/bin/hello_world", env=env)
            if proc.returncode != 0 or "Hello World" not in proc.stdout:
                return ((label, cells + ["failed"], "-", goal, "-",
                         "occlum run failed: " + _last_line(proc)), None)
            walls[kind].append(seconds)
    low, mid = min(walls["as is"]), statistics.median(walls["as is"])
    note = "wall clock, min of %d runs; `python -c pass` takes %s" % (E2E_RUNS, _fmt_wall(floor))
    if "bytecode cache" in walls:
        note += "; PYTHONDONTWRITEBYTECODE is set here: with a bytecode cache, min %.3f s, median %.3f s" % (
            min(walls["bytecode cache"]), statistics.median(walls["bytecode cache"]))
    return (label, cells + ["%.3f s" % low], "median %.3f s" % mid, goal, verdict(low <= 0.35),
            note), low


def _fmt_wall(seconds):
    return "%.1f ms" % (seconds * 1e3) if seconds < 0.1 else "%.3f s" % seconds


def _wall(cmd):
    start = time.perf_counter()
    subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - start


def print_table(rows):
    head = ("benchmark", *COLUMNS, "enclave vs", "goal", "")
    table = [head] + [(label, *cells, versus, goal, ok) for label, cells, versus, goal, ok, _ in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    print()
    for n, row in enumerate(table):
        cells = []
        for i, cell in enumerate(row):
            cells.append(str(cell).ljust(widths[i]) if i in (0, 5, 6, 7) else str(cell).rjust(widths[i]))
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("(a)-(c), (f): CPU seconds of the loop alone, best of the runs, minus the best run with no work;")
    print("  native and qemu-user in a child process, bare Unicorn inside emu_start, the enclave around")
    print("  run_program (LibOS boot included, then subtracted with the no-work run)")
    for label, *_, note in rows:
        if note:
            print("%s: %s" % (label.split()[0], note))


if __name__ == "__main__":
    main()
