"""Errors the tasks report to the user without a traceback."""


class LhdError(Exception):
    """A failure with a message that says what went wrong and what to do."""
