"""`python -m converters SRC DST ...` is `python -m converters.convert SRC DST ...`."""

import sys

from .convert import main

sys.exit(main())
