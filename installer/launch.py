"""Entry script of the frozen bundle: the same ``tnseg-desktop`` command as a pip install.

The app starts helper processes as ``sys.executable -m tnseg_desktop.<module> ...``
(the retraining worker). In a bundle ``sys.executable`` is this program, so
that form is understood here too, for the app's own modules only.
"""

import multiprocessing
import runpy
import sys


def main() -> int:
    multiprocessing.freeze_support()
    if len(sys.argv) >= 3 and sys.argv[1] == "-m" and sys.argv[2].startswith("tnseg_desktop."):
        module = sys.argv[2]
        sys.argv = [module] + sys.argv[3:]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from tnseg_desktop.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
