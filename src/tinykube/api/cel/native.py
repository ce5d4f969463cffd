"""The `cel` package's Rust extension, loaded without the package's `__init__`.

`import cel` also imports its command-line tool (typer, rich, prompt_toolkit): about 2 s on
a loaded 2-core machine, which the API server would pay at start. The extension module
itself (`cel/cel.*.so`: `compile`, `Context`, `OptionalValue`) loads in milliseconds, so it
is loaded from the package's directory directly; if that fails (another layout), the package
is imported as usual. It is registered as `cel.cel`, where a later `import cel` finds it (the
extension panics if it is initialised twice).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load() -> ModuleType:
    if "cel.cel" in sys.modules:  # loaded already (by `import cel`): it loads only once
        return sys.modules["cel.cel"]
    spec = importlib.util.find_spec("cel")
    for directory in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(Path(directory).glob("cel.*.so")):
            native = importlib.util.spec_from_file_location("cel.cel", path)
            if native is None or native.loader is None:
                continue
            module = importlib.util.module_from_spec(native)
            native.loader.exec_module(module)
            sys.modules["cel.cel"] = module  # what a later `import cel` takes it from
            return module
    return importlib.import_module("cel")


cel = _load()
