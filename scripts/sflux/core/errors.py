"""One exception type for problems the user can fix, printed as one line."""


class UserError(Exception):
    """An error whose message tells the user what to do; no traceback needed."""
