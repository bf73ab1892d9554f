"""This repository's own pipeline: compile each sample in instances/ with occlum-gcc,
lay out its instance, build it with `occlum build`, and show its measurement.

    doit hello_world      # build the hello_world sample and run it in the enclave
    doit list             # every task
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SAMPLES = {"hello_world": ["hello_world.c"]}
DOIT_CONFIG = {"default_tasks": ["hello_world"], "backend": "json",
               "dep_file": ".doit-repo.json", "verbosity": 2}


def occlum(folder, *args):
    return subprocess.call([sys.executable, "-m", "occlum_tasks.cli", *args], cwd=folder)


def task_sample():
    """Lay out, compile and build each sample instance."""
    from occlum_tasks.instance import lay_out
    for name, sources in SAMPLES.items():
        folder = ROOT / "instances" / name
        yield {"name": f"{name}:layout", "doc": f"lay out instances/{name} as `occlum init` does",
               "actions": [(lay_out, [folder])],
               "targets": [str(folder / "image" / "etc" / "hosts")], "uptodate": [True]}
        for src in sources:
            out = folder / "image" / "bin" / Path(src).stem
            yield {"name": f"{name}:{Path(src).stem}", "doc": f"occlum-gcc {src}",
                   "actions": [[sys.executable, "-m", "occlum_tasks.toolchain.gcc", "-O2",
                                "-o", str(out), str(folder / src)]],
                   "file_dep": [str(folder / src)], "targets": [str(out)],
                   "task_dep": [f"sample:{name}:layout"], "clean": True}
        yield {"name": f"{name}:build", "doc": f"occlum build in instances/{name} (incremental)",
               "actions": [lambda folder=folder: occlum(folder, "build") == 0],
               "task_dep": [f"sample:{name}:{Path(s).stem}" for s in sources], "uptodate": [False]}


def task_hello_world():
    """Build the hello_world sample, print its MRENCLAVE and run it in the enclave."""
    folder = ROOT / "instances" / "hello_world"
    return {"actions": [lambda: occlum(folder, "print", "mrenclave") == 0,
                        lambda: occlum(folder, "run", "/bin/hello_world") == 0],
            "task_dep": ["sample:hello_world:build"], "uptodate": [False]}
