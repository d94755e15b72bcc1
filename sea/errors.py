"""Errors a user can fix (bad data, bad config, missing files): the CLI prints them without a traceback."""


class SeaError(Exception):
    """Base of the errors that carry a complete, user-facing message."""
