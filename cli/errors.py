"""The errors a command raises for the operator: one clear line each, and the exit code it means."""

from __future__ import annotations

# Exit codes: 0 done, 1 failed, 2 bad input (usage, an unknown stack, a missing setting),
# 3 transient (a service could not be reached or asked us to slow down: try again later).
FAILED, USAGE, TRANSIENT = 1, 2, 3


class CliError(Exception):
    """A failure the operator can act on: ``str(error)`` is the line printed, ``code`` the exit code."""

    code = FAILED

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(CliError):
    """Bad input: an option, a stack that cannot be found, a setting that is missing."""

    code = USAGE


class Transient(CliError):
    """A service could not be reached, or is throttling: nothing is wrong with the input."""

    code = TRANSIENT
