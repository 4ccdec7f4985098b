"""`python -m dinoscope` runs the command line."""

from .cli import main

main()
