"""The speed corner: every trick that replaces a plain line, with its measured gain."""
