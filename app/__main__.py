import sys

if __name__ == "__main__":  # decode workers are spawned: they import this module and must not run the CLI
    if getattr(sys, "frozen", False):  # only a frozen app answers its own spawned workers here
        import multiprocessing  # (not imported otherwise: a search never spawns anything)

        multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())
