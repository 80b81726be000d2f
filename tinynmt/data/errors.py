"""The one exception the data layer raises for bad or missing input."""


class DataError(Exception):
    """Bad or missing data; the message is one line that says what, where, and what to do."""
