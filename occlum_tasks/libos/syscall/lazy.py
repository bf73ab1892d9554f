"""System call handlers whose module is imported at their first call: `occlum run` of
a program that never spawns, waits or polls does not pay for loading that code.

Such a module is measured like the rest of the LibOS: under `occlum run` the import
goes to the measured loader (runtime_loader.py), which hashed its file at start-up,
before the guest ran, and compiles it from exactly those bytes; what lies on disk by
the time of the first call does not matter."""
import importlib


def lazy(module: str, name: str, nargs: int):
    """A handler standing for `module.name`, which takes `nargs` arguments (the table
    reads the count from `nargs`, as the stand-in takes *args)."""
    target = []

    def handler(*args):
        if not target:
            target.append(getattr(importlib.import_module(module), name))
        return target[0](*args)

    handler.nargs = nargs
    handler.__name__ = handler.__qualname__ = name
    return handler
