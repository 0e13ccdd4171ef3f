"""How the converters' command lines report a :class:`ConversionError`: one line
``error: <message>`` on stderr and exit status 1, no traceback."""
from __future__ import annotations

import sys
from typing import Callable

from .errors import ConversionError

__all__ = ['report_error', 'run_cli']


def report_error(exc: ConversionError) -> int:
    """Print ``error: <message>`` on stderr; return the exit status, 1."""
    print(f'error: {exc}', file=sys.stderr)
    return 1


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; print a :class:`ConversionError` as ``error: ...`` and exit with 1."""
    try:
        main()
    except ConversionError as exc:
        sys.exit(report_error(exc))
