"""The error every checkpoint problem raises."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, written or used; the message says what was found and what to do."""
