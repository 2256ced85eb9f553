import multiprocessing
import sys

if __name__ == "__main__":  # decode workers are spawned: they import this module and must not run the CLI
    multiprocessing.freeze_support()  # a frozen app answers its own spawned workers here
    from app.cli import main

    sys.exit(main())
