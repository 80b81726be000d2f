"""`python -m tinynmt.data`: the program is tinynmt/programs/data.py."""
import sys

from ..programs.data import main

if __name__ == "__main__":
    sys.exit(main())
