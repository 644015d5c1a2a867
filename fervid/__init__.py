"""fervid: real-time facial expression recognition for many camera streams at once, on Ray.

The installed package is one namespace. Each subpackage is a folder at the top of the repository
(``fervid.models`` is ``models/``, ``fervid.services`` is ``services/``...), mapped by
``[tool.setuptools.package-dir]`` in ``pyproject.toml``; docs/architecture.md draws the layers.
Importing this package has no side effects.
"""

__version__ = "0.1.0"
