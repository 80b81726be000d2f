"""`python -m tinynmt.train`: the program is tinynmt/programs/train.py."""
import sys

from .programs.train import main

if __name__ == "__main__":
    sys.exit(main())
