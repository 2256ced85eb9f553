"""A module whose import leaves a mark: a prestarted decode worker imports it before it has a job (tests)."""

import os
from pathlib import Path

Path(os.environ["FOVEA_TEST_PRELOAD_MARK"]).write_text(str(os.getpid()))
