"""``python -m omni_rag.cli``: the same as the ``omni-rag`` script, for environments without it."""

import sys

from omni_rag.cli import main

sys.exit(main())
