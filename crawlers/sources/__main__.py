"""``python -m crawlers.sources``."""

import sys

from crawlers.sources import main

sys.exit(main())
