"""The one exception type the toolkit raises for bad input.

Its message is a single line naming the file, line or field at fault; the
``kblm`` CLI prints it and exits non-zero. Plain Python, no TensorFlow.
"""


class KblmError(Exception):
    """Bad input or a broken artifact, explained in one line for the user."""
