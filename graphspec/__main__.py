"""`python -m graphspec`: the same as the `graphspec` command."""

from graphspec.cli.app import main

if __name__ == "__main__":
    main()
