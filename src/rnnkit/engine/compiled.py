"""The C++ time loops (``kernels/*.cpp``), compiled on first use and cached.

``torch.utils.cpp_extension.load`` builds them with the system's C++ compiler and ninja the
first time a process needs them (about a minute on a 2-core machine), then loads the cached
build in well under a second. The build is optimised for the CPU it runs on (``-march=native``),
so the cache folder's name carries a hash of the CPU's feature flags (and of torch's version):
a cache made on another CPU, or against another torch, is never loaded.

Which loops run is chosen by the environment variable ``RNNKIT_KERNELS``:
    auto    (default) the compiled loops when they build, else the Python loops, with one
            warning that says why
    cpp     the compiled loops, and an error if they cannot be built
    python  the Python loops of :mod:`rnnkit.engine.lstm`, nothing is compiled
"""

import functools
import hashlib
import os
import platform
import warnings
from pathlib import Path
from types import ModuleType

KERNELS = Path(__file__).parent / "kernels"
CHOICES = ("auto", "cpp", "python")


class KernelBuildError(RuntimeError):
    """RNNKIT_KERNELS=cpp was asked for and the C++ loops could not be built."""


def kernel_choice() -> str:
    choice = os.environ.get("RNNKIT_KERNELS", "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(
            f"RNNKIT_KERNELS={choice!r} is not a choice: use one of {', '.join(CHOICES)}"
        )
    return choice


def loops() -> ModuleType | None:
    """The compiled loops, or None where the Python loops are to run."""
    choice = kernel_choice()
    if choice == "python":
        return None
    module, problem = _build()
    if module is not None:
        return module
    if choice == "cpp":
        raise KernelBuildError(f"RNNKIT_KERNELS=cpp but the C++ loops did not build: {problem}")
    _warn_once(problem)
    return None


def loops_for(tensor, python_loops: ModuleType):
    """The compiled loops for a CPU tensor when they build, else ``python_loops`` (a module
    with functions of the same names)."""
    module = loops() if tensor.device.type == "cpu" else None
    return module if module is not None else python_loops


@functools.cache
def _warn_once(problem: str) -> None:
    warnings.warn(
        f"rnnkit runs its Python loops (slower, same results): the C++ loops did not build "
        f"({problem}). Install a C++ compiler and ninja, or set RNNKIT_KERNELS=python to "
        "silence this.",
        RuntimeWarning,
        stacklevel=4,
    )


@functools.cache
def _build() -> tuple[ModuleType | None, str]:
    """Compile (or load the cached build); returns the module or None and the reason."""
    try:
        from torch.utils import cpp_extension

        _put_ninja_on_path()
        if not cpp_extension.is_ninja_available():
            return None, "ninja was not found"
        sources = sorted(KERNELS.glob("*.cpp"))  # bindings.cpp and one file of loops per cell
        name = "rnnkit_loops_" + _build_tag()
        build_directory = getattr(cpp_extension, "_get_build_directory", None)  # private API
        if build_directory is not None:
            _wait_for_or_clear_lock(Path(build_directory(name, verbose=False)))
        return cpp_extension.load(
            name=name,
            sources=[str(s) for s in sources],
            extra_cflags=["-O3", "-march=native", "-ffast-math"],
            extra_ldflags=["-lm"],  # glibc: also brings libmvec, the vectorised exp and tanh
            verbose=False,
        ), ""
    except Exception as error:  # a missing compiler, a failed build: fall back, say why
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return None, f"{type(error).__name__}: {first_line}"


STALE_LOCK_SECONDS = 300  # a build takes about a minute; a lock this old was left behind


def _wait_for_or_clear_lock(build_directory: Path) -> None:
    """torch's build lock is a file that the building process deletes when it is done; a
    process killed while building (Ctrl-C, a test's timeout) leaves it behind, and every later
    process would wait for it forever. Wait while a build may really be running; remove a
    lock older than STALE_LOCK_SECONDS, with a warning."""
    import time

    lock = build_directory / "lock"
    while lock.exists():
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return  # the other build just finished
        if age > STALE_LOCK_SECONDS:
            warnings.warn(
                f"removing {lock}, left {age / 60:.0f} minutes ago by a build that was "
                "interrupted; building the C++ loops again",
                RuntimeWarning,
                stacklevel=2,
            )
            lock.unlink(missing_ok=True)
            return
        time.sleep(1)


def _put_ninja_on_path() -> None:
    """The ninja that pip installed with rnnkit lives beside the interpreter, which need not be
    on PATH (``.venv/bin/python`` run without activating the environment)."""
    try:
        import ninja

        folder = ninja.BIN_DIR
    except (ImportError, AttributeError):
        return
    path = os.environ.get("PATH", "")
    if folder not in path.split(os.pathsep):
        os.environ["PATH"] = folder + os.pathsep + path


def _build_tag() -> str:
    """A short hash of the CPU's model and feature flags, the machine type, torch's version and
    where the sources are: a build made for another CPU or against another torch is never
    loaded, and each checkout has its own."""
    import torch

    # The sources' folder too: torch rebuilds a cache made from sources at another path, so
    # two checkouts sharing one cache name would rebuild it for each other, turn by turn.
    text = platform.machine() + torch.__version__ + str(KERNELS.resolve())
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "model name", "Features")):
                    text += line
                if line.strip() == "":
                    break  # the first processor describes them all
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:12]


if __name__ == "__main__":  # `python -m rnnkit.engine.compiled`: build now (make does, once)
    print(
        "rnnkit's C++ loops: built and cached"
        if loops() is not None
        else "rnnkit's C++ loops: not used here; the Python loops run"
    )
