"""The writable layer alone (run/mount/__ROOT, occlum_tasks.image.writable): 16 MiB
written in 4 KiB calls with a final fsync, read back from the cache, and read again
after reopening. The LibOS's file benchmark (bench/libos.py row d) adds the whole
stack on top. Prints figures; asserts nothing.

    python bench/writable.py [--mib 16]
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

from occlum_tasks.image.writable import open_writable

BLOCK = 4096


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=16)
    n = ap.parse_args().mib * 1024 * 1024 // BLOCK
    key, block = os.urandom(16), os.urandom(BLOCK)
    with tempfile.TemporaryDirectory(prefix="occlum-bench-rw-") as tmp:
        layer = Path(tmp) / "rw"
        fs = open_writable(layer, key)
        ino = fs.create("/bench", 0o644)
        t0 = time.perf_counter()
        for i in range(n):
            fs.write(ino, i * BLOCK, block)
        fs.fsync(ino)
        t1 = time.perf_counter()
        for i in range(n):
            fs.read(ino, i * BLOCK, BLOCK)
        t2 = time.perf_counter()
        fs.close()
        fs = open_writable(layer, key)
        t3 = time.perf_counter()
        for i in range(n):
            fs.read(ino, i * BLOCK, BLOCK)
        t4 = time.perf_counter()
        fs.close()
    mb = n * BLOCK / 1e6
    print(f"writable layer, {mb:.0f} MB in 4 KiB calls (load average {os.getloadavg()[0]:.2f}):")
    print(f"  write + fsync      {mb / (t1 - t0):7.0f} MB/s")
    print(f"  read, cached       {mb / (t2 - t1):7.0f} MB/s")
    print(f"  read after reopen  {mb / (t4 - t3):7.0f} MB/s")


if __name__ == "__main__":
    main()
