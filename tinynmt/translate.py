"""`python -m tinynmt.translate`: the program is tinynmt/programs/translate.py."""
import sys

from .programs.translate import main

if __name__ == "__main__":
    sys.exit(main())
