"""The course's notebooks from their sources, and their executed pages in docs/course/.

The sources are jupytext "percent" files (``course/NN_name.py``: plain Python, `# %%` starts a
cell), so git diffs them as code and ruff checks them. From them:

    python course/build.py notebooks      course/notebooks/NN_name.ipynb for Jupyter, made only
                                          where missing so that your edits there survive
    python course/build.py docs [NN ...]  execute each notebook (in runs/course/) and write
                                          docs/course/NN_name.md with its outputs and plots

Every page records the SHA-256 of the source it was executed from; tests/test_course.py fails
when a source changed and its page was not made again.
"""

import hashlib
import sys
import time
from pathlib import Path

COURSE = Path(__file__).resolve().parent
ROOT = COURSE.parent
PAGES = ROOT / "docs" / "course"
NOTEBOOKS = COURSE / "notebooks"
WORK = ROOT / "runs" / "course"
STAMP = "<!-- executed from course/{name} (sha256 {digest}) by `make course-docs`; do not edit -->"


def sources() -> list[Path]:
    """The notebooks' sources in the course's order."""
    return sorted(p for p in COURSE.glob("[0-9][0-9]_*.py"))


def digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def notebook(source: Path):
    import jupytext

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def execute(source: Path, workdir: Path, timeout: int = 240):
    """The executed notebook (raises nbclient's CellExecutionError on an error or a failed
    assertion) and the seconds it took. Runs with `workdir` as the current directory."""
    from nbclient import NotebookClient

    workdir.mkdir(parents=True, exist_ok=True)
    nb = notebook(source)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb, time.perf_counter() - start


def page_path(source: Path) -> Path:
    return PAGES / f"{source.stem}.md"


def stamp(source: Path) -> str:
    return STAMP.format(name=source.name, digest=digest(source))


def write_page(source: Path, nb, seconds: float) -> Path:
    """docs/course/NN_name.md (and its plots in NN_name_files/) from an executed notebook."""
    from nbconvert import MarkdownExporter

    body, resources = MarkdownExporter().from_notebook_node(
        nb, resources={"output_files_dir": f"{source.stem}_files"}
    )
    PAGES.mkdir(parents=True, exist_ok=True)
    for old in (PAGES / f"{source.stem}_files").glob("*"):
        old.unlink()
    for name, data in resources.get("outputs", {}).items():
        (PAGES / name).parent.mkdir(parents=True, exist_ok=True)
        (PAGES / name).write_bytes(data)
    footer = (
        f"\n---\n*Executed top to bottom in {seconds:.0f} s on the machine that made this page.*\n"
    )
    page = page_path(source)
    page.write_text(f"{stamp(source)}\n\n{body.strip()}\n{footer}", encoding="utf-8")
    return page


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("notebooks", "docs"):
        print(__doc__)
        return 2
    chosen = [s for s in sources() if len(argv) == 1 or s.name[:2] in argv[1:]]
    if argv[0] == "notebooks":
        import nbformat

        NOTEBOOKS.mkdir(exist_ok=True)
        for source in chosen:
            target = NOTEBOOKS / f"{source.stem}.ipynb"
            if not target.exists():
                nbformat.write(notebook(source), target)
                print(f"wrote {target.relative_to(ROOT)}")
        return 0
    for source in chosen:
        nb, seconds = execute(source, WORK)
        print(
            f"{source.name}: {seconds:.0f} s -> {write_page(source, nb, seconds).relative_to(ROOT)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
