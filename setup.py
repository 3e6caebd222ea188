"""Ships the startup hook ``smarties_terratorch_autoload.pth`` at the top of site-packages (metadata: pyproject.toml).

A ``.pth`` file must sit directly in site-packages to run at interpreter start, which package data cannot do.
Like pytest-cov's and editables' hooks, it is written into the build's top level: by ``build_py`` for wheels and
by ``editable_wheel`` for ``pip install -e``. Its one line imports ``_smarties_terratorch_autoload``, which only
arms a lazy import hook (see that module).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH_NAME = "smarties_terratorch_autoload.pth"
# Sorted after setuptools' "__editable__.*.pth", so in an editable install the module is importable by then.
PTH_LINE = "import _smarties_terratorch_autoload; _smarties_terratorch_autoload._startup()\n"


class BuildPyWithPth(build_py):
    """``build_py`` that also writes the startup ``.pth`` into the top of the wheel."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            Path(self.build_lib, PTH_NAME).write_text(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        return outputs if self.editable_mode else [*outputs, str(Path(self.build_lib, PTH_NAME))]


class EditableWheelWithPth(editable_wheel):
    """``editable_wheel`` that adds the startup ``.pth`` next to setuptools' own editable ``.pth``."""

    def _install_namespaces(self, installation_dir: str, pth_prefix: str) -> None:
        super()._install_namespaces(installation_dir, pth_prefix)
        Path(installation_dir, PTH_NAME).write_text(PTH_LINE)


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
