"""The one error of nlseg's converters (model checkpoints and data sets)."""

__all__ = ['ConversionError']


class ConversionError(ValueError):
    """The source is not what the converter expects (missing or unknown keys, wrong shapes,
    an unreadable file, unpaired images, bad label values) or an argument is out of range;
    the message says what and, where it can, what to do. The command lines print it as
    ``error: ...`` and exit with status 1."""
