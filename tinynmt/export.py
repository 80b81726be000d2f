"""`python -m tinynmt.export`: the program is tinynmt/programs/export.py."""
import sys

from .programs.export import main

if __name__ == "__main__":
    sys.exit(main())
