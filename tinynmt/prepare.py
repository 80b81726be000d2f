"""`python -m tinynmt.prepare`: the program is tinynmt/programs/prepare.py."""
import sys

from .programs.prepare import main

if __name__ == "__main__":
    sys.exit(main())
