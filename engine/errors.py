"""Errors every stage may raise for the CLI to print as one line (no traceback)."""


class UserError(Exception):
    """A problem the user can fix (bad argument, missing input): exit 2."""


class CheckFailed(Exception):
    """A check ran and found something (stale files, failed expectation): exit 1."""
