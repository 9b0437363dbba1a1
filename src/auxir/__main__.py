"""``python -m auxir`` (and ``torchrun -m auxir train ...``) runs the command line."""

from __future__ import annotations

import sys

from auxir.cli import main

sys.exit(main())
