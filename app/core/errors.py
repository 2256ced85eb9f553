"""Typed errors of the core; the CLI turns them into one-line messages and exit code 1."""


class FoveaError(Exception):
    """Base of every error the core raises on purpose."""


class BackendError(FoveaError):
    """A backend that cannot be created or cannot run (missing torch, bad model folder, ...)."""


class UsageError(FoveaError):
    """A request that makes no sense (the CLI maps it to exit code 2)."""
