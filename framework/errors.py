"""The one exception type the CLI turns into a one-line message."""


class FwError(Exception):
    """A problem the user can fix: bad config, missing file, refused pickle...

    The message is a single line that says what is wrong, where, and what to
    do. The CLI prints it without a traceback unless ``--debug`` is given.
    """


class FwWarning(UserWarning):
    """Something the user should know that does not stop the run."""
