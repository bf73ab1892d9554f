"""System call handlers whose module is imported at their first call: `occlum run` of
a program that never spawns, waits or polls does not pay for compiling that code
(~5 ms a module without a bytecode cache)."""
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
