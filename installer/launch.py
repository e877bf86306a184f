"""Entry script of the frozen bundle: the same ``tnseg-desktop`` command as a pip install."""

import sys

from tnseg_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
