"""`python -m localslack` runs the emulator as a process."""

import sys

from localslack.cli import main

sys.exit(main())
