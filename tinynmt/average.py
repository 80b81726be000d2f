"""`python -m tinynmt.average`: the program is tinynmt/programs/average.py."""
import sys

from .programs.average import main

if __name__ == "__main__":
    sys.exit(main())
