"""`python -m tinynmt.plot`: the program is tinynmt/programs/plot.py."""
import sys

from .programs.plot import main

if __name__ == "__main__":
    sys.exit(main())
