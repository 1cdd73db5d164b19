"""Preloaded first by the forkserver, before the worker and torch: from here on the
forkserver dies with the grader that started it (see :mod:`.processes`). Imported
anywhere else (no grader pid in the environment), it does nothing.
"""

import os

from .processes import GRADER_PID, die_with_parent

if GRADER_PID in os.environ:
    die_with_parent(int(os.environ.pop(GRADER_PID)))
