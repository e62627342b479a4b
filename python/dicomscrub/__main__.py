"""``python -m dicomscrub``: the ``dicomscrub`` command."""

from dicomscrub.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
