"""What methods declare about the grid, read from their source without importing them.

The workflow builds its run grid at every Snakemake start (and on every cluster node), so it
reads these declarations statically instead of importing torch: each registered method's
``unsupported_targets`` class attribute, a dict literal whose values are strings or names of
module-level string constants.
"""

from __future__ import annotations

import ast
import functools

from sivi_engine.provenance import PACKAGE_ROOT, registered_modules

#: The class attribute read here (:class:`sivi_engine.methods.base.Method`).
ATTRIBUTE = "unsupported_targets"


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments (implicit concatenation included)."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                constants |= {
                    t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)
                }
    return constants


def _string(node: ast.expr, constants: dict[str, str], where: str) -> str:
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    value = ast.literal_eval(node)
    if not isinstance(value, str):
        raise ValueError(f"{where}: {ATTRIBUTE} keys and reasons must be strings")
    return value


def _registered_class(tree: ast.Module, method: str) -> ast.ClassDef | None:
    """The class decorated with ``@METHODS.register(method)``."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)
                    and decorator.args[0].value == method
                ):
                    return node
    return None


def _declared(source: str, method: str, where: str) -> dict[str, str]:
    tree = ast.parse(source)
    cls = _registered_class(tree, method)
    for node in cls.body if cls is not None else ():
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            names = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and n.id == ATTRIBUTE for n in names):
                if not isinstance(node.value, ast.Dict):
                    raise ValueError(f"{where}: {ATTRIBUTE} must be a dict literal")
                constants = _module_constants(tree)
                return {
                    _string(k, constants, where): _string(v, constants, where)
                    for k, v in zip(node.value.keys, node.value.values)
                }
    return {}


@functools.cache
def unsupported_targets() -> dict[str, dict[str, str]]:
    """Registered method → {target it cannot run: reason}, for the methods that declare any."""
    found = {}
    for method, module in registered_modules("methods").items():
        path = PACKAGE_ROOT.parent / (module.replace(".", "/") + ".py")
        declared = _declared(path.read_text(), method, str(path.relative_to(PACKAGE_ROOT.parent)))
        if declared:
            found[method] = declared
    return found
