"""One exception hierarchy for the sandbox.

Every error a user can cause derives from :class:`SandboxError` and carries the exit
code the CLI returns, so the CLI prints ``str(error)`` and exits without a traceback.
"""

from typing import Any

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class SandboxError(Exception):
    """Base class: a problem the user can fix, reported as one paragraph."""

    exit_code = EXIT_BAD_INPUT


class ScenarioNotFound(SandboxError):
    """An unknown scenario id or a folder that is not a scenario."""


class ScenarioFormatError(SandboxError):
    """A scenario folder whose metadata or files are malformed."""


class ConfigError(SandboxError):
    """A config file or ``--set`` override that does not fit the scenario's config."""


class CandidateError(SandboxError):
    """A candidate pipeline that cannot even be loaded (missing file, syntax error).

    It is the candidate's failure, not bad input to the tool, so it exits as a fail.
    """

    exit_code = EXIT_FAIL


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP. It stops a command exactly as Ctrl-C does, through the same
    cleanup (runs killed, terminal restored, the attempt kept), and exits 128 + signal
    as shells report it.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def interrupted(stop: KeyboardInterrupt) -> int:
    """The exit code for a command stopped by Ctrl-C (130) or by SIGTERM/SIGHUP (143/129)."""
    return 128 + stop.signum if isinstance(stop, Stopped) else EXIT_INTERRUPTED


def quote(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: how a message quotes what the user gave,
    which may be megabytes long or hold newlines and control characters.
    """
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
