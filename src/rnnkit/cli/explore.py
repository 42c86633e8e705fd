"""`rnnkit explore RUN_DIR ...`: the interactive explorer in the browser (rnnkit.explorer)."""

from pathlib import Path

from rnnkit.cli.common import add_checkpoint_choice, log


def add_commands(commands) -> None:
    explore = commands.add_parser(
        "explore",
        help="a local web app: type text and watch the cells, sample live, select and match",
        description="Start a local web app on the trained runs (language-model and task runs): "
        "type or paste text and see any unit (layer, h / c / each gate, index) over it, with "
        "the next-character guesses on hover; pick units ranked by what they track; select a "
        "stretch to find the units that are on exactly there and where else they are; sample "
        "with the heat map filling in; compare runs by their loss per character; see a task "
        "run's attention. Binds 127.0.0.1 unless --host says otherwise.",
    )
    explore.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    explore.add_argument(
        "--port", type=int, default=8000, help="port (default 8000; 0: any free port)"
    )
    explore.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; another address "
        "exposes the runs to the network, with a warning)",
    )
    explore.add_argument(
        "--text", type=Path, default=None, metavar="FILE", help="the text the page starts with"
    )
    explore.add_argument("--open", action="store_true", help="open the page in a web browser")
    add_checkpoint_choice(explore)


def run_explore(args) -> int:
    from rnnkit.errors import UsageError
    from rnnkit.explorer.app import create_app
    from rnnkit.explorer.runs import MAX_TEXT, LanguageRun, load_runs
    from rnnkit.explorer.server import LOCAL_NAMES, is_loopback, serve
    from rnnkit.inside.activations import read_text

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    runs = load_runs(args.run_dirs, args.checkpoint, warn=log)
    text = ""
    if args.text is not None:
        text = read_text(args.text)
        if len(text) > MAX_TEXT:
            log(f"{args.text}: the page starts with its first {MAX_TEXT:,} characters")
            text = text[:MAX_TEXT]
    elif any(isinstance(run, LanguageRun) for run in runs.values()):
        first = next(run for run in runs.values() if isinstance(run, LanguageRun))
        try:
            text = first.stretch(0, 1500)["text"]
        except UsageError as error:  # the corpus is gone: start with an empty box
            log(f"no validation text for {first.name}: {error}")
    for name, run in runs.items():
        log(f"{name}: {run.path} ({run.checkpoint.name})")
    from rnnkit.engine import compiled

    compiled.loops()  # build (or load) the C++ loops now, not during the first sample
    local = is_loopback(args.host)
    app = create_app(runs, text, allowed_hosts=LOCAL_NAMES if local else None)
    serve(app, args.host, args.port, args.open, log)
    return 0


COMMANDS = {"explore": run_explore}
