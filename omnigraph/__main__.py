"""The `omnigraph` program (`python -m omnigraph`, and the console script): `cli.main`, with Ctrl-C at any
moment a clean exit 130. This module imports almost nothing, so a Ctrl-C while Python starts is caught here."""
import signal
import sys


def entry() -> None:
    """Run `main`, then exit with its code; a Ctrl-C after the outcome is decided is ignored, so it cannot turn a
    finished command into a traceback or a death by signal while Python shuts down."""
    try:
        from .cli import main

        code = main()
    except KeyboardInterrupt:  # before a subcommand runs: while the CLI imports, or argparse builds its parser
        print("\ninterrupted", file=sys.stderr)
        code = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    entry()
