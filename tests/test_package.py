"""The package's top level: lazy public names, and a console script that starts without torch."""

from __future__ import annotations

import subprocess
import sys

import smarties_terratorch


def test_public_names_resolve() -> None:
    for name in smarties_terratorch.__all__:
        assert getattr(smarties_terratorch, name) is not None
        assert name in dir(smarties_terratorch)


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        smarties_terratorch.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_help_does_not_import_torch() -> None:
    # `smarties --help` and argument errors answer in well under a second because nothing imports torch
    code = (
        "import sys\n"
        "from smarties_terratorch.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
