"""The `run` command of an instance's doit: `doit run /bin/app ARGS` runs a program,
anything else is doit's own `run` (so `doit`, `doit build` keep working).

doit turns arguments containing `=` into variables and parses options up to the
first non-option; a program's arguments must arrive untouched, so they are taken
from the original command line (DESIGN.md section 4).
"""
import sys

from doit.cmd_run import Run


def keep_build_vars_before(doit_args):
    """doit took every `k=v` of the command line as a build variable, the program's
    arguments included (`doit run /bin/app sign_key=x` must not re-sign the enclave):
    keep only those typed before the program's path."""
    from doit.doit_cmd import reset_vars, set_var
    reset_vars()
    for arg in doit_args:
        if not arg.startswith("-") and "=" in arg:
            set_var(*arg.split("=", 1))


class RunCommand(Run):
    doc_purpose = "build (default tasks) or run a program in the enclave: doit run /bin/app ARGS"
    doc_usage = "[TASK ...] | /PATH/IN/ENCLAVE [ARGS ...]"

    def parse_execute(self, in_args):
        if in_args and in_args[0].startswith("/"):
            path = in_args[0]
            from ..launch import run_in_enclave, split_at_program
            doit_args, program_args = split_at_program(path, sys.argv[1:])
            keep_build_vars_before(doit_args)
            from .build import BuildReporter
            BuildReporter.quiet = True
            status = super().parse_execute(["build"])
            if status != 0:
                return status
            return run_in_enclave(path, program_args)
        return super().parse_execute(in_args)
