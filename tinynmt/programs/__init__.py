"""The command-line programs: argument parsing, files and messages, thin over the library."""
