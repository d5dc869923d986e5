"""A crash is a bug in mlops, not a finding: a short line for the user, the traceback in a log file."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback

from mlops import __version__


def report(exc: BaseException) -> str:
    """Write the traceback to a fresh log file and return the line to print."""
    text = f"mlops {__version__}, Python {sys.version.split()[0]}\nargv: {sys.argv!r}\n\n" + "".join(
        traceback.format_exception(exc)
    )
    try:
        fd, log = tempfile.mkstemp(prefix="mlops-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        where = f"traceback in {log}"
    except OSError:  # no writable temp folder: the traceback is better on stderr than lost
        where = "traceback:\n" + text
    return f"mlops: internal error ({type(exc).__name__}), please report it with the log; {where}"
