"""The import rule the package layout follows: every module imports only from its own layer or
the layers below it (docs/architecture.md draws them), and nothing imports in a cycle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rnnkit"

# Lowest first. A module belongs to the first layer whose prefix its name starts with.
LAYERS = [
    (
        "base",
        [
            "rnnkit.errors",
            "rnnkit.arguments",
            "rnnkit.memory",
            "rnnkit.config_fields",
            "rnnkit.cell_names",
        ],
    ),
    ("cells", ["rnnkit.cells"]),
    ("engine", ["rnnkit.engine"]),
    ("nn", ["rnnkit.nn"]),
    ("data", ["rnnkit.data"]),
    ("models", ["rnnkit.models"]),
    ("training and generation", ["rnnkit.training", "rnnkit.generation"]),
    ("inside", ["rnnkit.inside"]),
    ("tasks", ["rnnkit.tasks"]),
    ("explorer", ["rnnkit.explorer"]),
    ("cli", ["rnnkit.cli", "rnnkit.__main__"]),
]


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every rnnkit module the file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnkit"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py")
                found.add(candidate if is_module.exists() else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnkit.")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name != "rnnkit":  # the package's public API imports its layers lazily
            modules[name] = {m for m in imports_of(path) if m != "rnnkit"}
    return modules


def test_no_module_imports_a_layer_above_its_own():
    violations = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {imported} "
        f"({LAYERS[layer_of(imported)][0]})"
        for module, imported_modules in graph().items()
        for imported in imported_modules
        if layer_of(imported) > layer_of(module)
    ]
    assert not violations, "\n".join(violations)


def test_no_import_cycles():
    modules = graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, module]))
        if module in done:
            return
        for imported in sorted(modules.get(module, ())):
            if imported.startswith("rnnkit.") and not imported.startswith(module + "."):
                visit(imported, [*path, module])
        done.add(module)

    for module in modules:
        visit(module, [])
