"""The `run` command of an instance's doit: `doit run /bin/app ARGS` runs a program,
anything else is doit's own `run` (so `doit`, `doit build` keep working).

doit turns arguments containing `=` into variables and parses options up to the
first non-option; a program's arguments must arrive untouched, so they are taken
from the original command line (DESIGN.md section 4).
"""
import sys

from doit.cmd_run import Run


def program_argv(path, argv=None):
    """The program's arguments exactly as typed after its path."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv[1:], 1):
        if arg == path:
            return argv[i + 1:]
    return []


class RunCommand(Run):
    doc_purpose = "build (default tasks) or run a program in the enclave: doit run /bin/app ARGS"
    doc_usage = "[TASK ...] | /PATH/IN/ENCLAVE [ARGS ...]"

    def parse_execute(self, in_args):
        if in_args and in_args[0].startswith("/"):
            path = in_args[0]
            from .build import BuildReporter
            BuildReporter.quiet = True
            status = super().parse_execute(["build"])
            if status != 0:
                return status
            from ..launch import run_in_enclave
            return run_in_enclave(path, program_argv(path))
        return super().parse_execute(in_args)
