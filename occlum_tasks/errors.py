"""Errors that reach the user as one clear line (DESIGN.md section 4)."""


class OcclumError(Exception):
    """A failure the user can act on. str() is the message shown, without traceback."""


class ConfigError(OcclumError):
    """Occlum.json is invalid; holds every problem found, one per line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class IntegrityError(OcclumError):
    """A protected file failed its MAC or hash check; the message names it."""


class SignError(OcclumError):
    """Signing or verifying the enclave's SIGSTRUCT failed."""
