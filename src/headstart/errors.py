"""The one exception type a user sees: a message that names the file, field or value and the fix."""

__all__ = ["HeadstartError"]


class HeadstartError(Exception):
    """A problem the user can act on; the CLI prints it on one line and exits non-zero."""
