"""The explorer's HTTP side: the page, its two assets and a JSON API over the loaded runs.

    GET  /                    the page
    GET  /assets/NAME         explorer.js or explorer.css (a fixed table: no request path ever
                              reaches the file system)
    GET  /api/runs            the runs, the starting text and the limits
    POST /api/read            {run, text} -> loss per character, next-character guesses, the
                              units ranked by meaning
    POST /api/unit            {run, text, layer, index} -> every part of one unit
    POST /api/select          {run, text, start, end, threshold, coverage, before, after} ->
                              the units on over the stretch and off around it
    POST /api/match           {run, text, units, threshold, where: text|validation, need,
                              limit} -> the stretches where the units are on, longest first
    GET  /api/validation      ?run&start&length -> a stretch of the run's validation text
    GET  /api/sample          ?run&prime&length&temperature&top_k&top_p&seed&layer&index&part
                              &weights (float32 or int8, as `rnnkit sample --weights`)
                              -> server-sent events, a few characters each, until done or the
                              page closes the stream (its stop button)
    POST /api/task            {run, text} -> a task run's output (and attention weights)

Every error is JSON {"error": message}: 400 malformed request, 404 unknown run or path, 413
text or body too long, 422 a request the model cannot answer (characters outside its
vocabulary, a unit out of range). The model work runs in worker threads, so requests proceed
side by side and the event loop stays free.
"""

import json
import logging
import time
from importlib import resources

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rnnkit.errors import UsageError
from rnnkit.explorer.runs import (
    MAX_TEXT,
    VALIDATION_MATCH_CHARS,
    LanguageRun,
    TaskRun,
    TextTooLong,
    check_length,
    unit_value,
)
from rnnkit.training.checkpoint import CheckpointError

MAX_BODY = 256 * 1024  # bytes of a request body: MAX_TEXT characters with room for escapes
MAX_SAMPLE = 5_000  # characters one sample may ask for
MAX_MATCHES = 500  # matches one request may ask for
STREAM_EVERY = 0.05  # seconds of sampling per event
ASSETS = {"explorer.js": "text/javascript", "explorer.css": "text/css"}
log = logging.getLogger("rnnkit.explore")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(runs: dict, text: str = "", allowed_hosts: list[str] | None = None) -> Starlette:
    """The app over ``runs`` (name -> LanguageRun | TaskRun, from runs.load_runs); ``text``
    is what the page shows first. With ``allowed_hosts``, a request whose Host header names
    another host gets 400 (a web page elsewhere cannot reach a server on 127.0.0.1 through a
    domain name of its own: DNS rebinding)."""
    static = resources.files("rnnkit.explorer") / "static"
    page = (static / "index.html").read_bytes()
    assets = {name: (static / name).read_bytes() for name in ASSETS}

    def language_run(name) -> LanguageRun:
        run = runs.get(run_name(name))
        if not isinstance(run, LanguageRun):
            known = ", ".join(n for n, r in runs.items() if isinstance(r, LanguageRun))
            raise ApiError(404, f"no language-model run named {name!r}; the runs are: {known}")
        return run

    async def index(request):
        return Response(page, media_type="text/html; charset=utf-8")

    async def asset(request):
        name = request.path_params["name"]
        if name not in assets:
            raise ApiError(404, f"no asset {name!r}")
        return Response(assets[name], media_type=ASSETS[name] + "; charset=utf-8")

    async def list_runs(request):
        return JSONResponse(
            {
                "runs": [run.info() for run in runs.values()],
                "text": text[:MAX_TEXT],
                "limits": {
                    "text": MAX_TEXT,
                    "sample": MAX_SAMPLE,
                    "validation": VALIDATION_MATCH_CHARS,
                },
            }
        )

    async def read_text(request):
        body = await json_body(request)
        run = language_run(body.get("run"))
        reading = await run_in_threadpool(run.read, string(body, "text"))
        meaning = await run_in_threadpool(reading.meaning)
        return JSONResponse(
            {
                "run": run.name,
                "length": len(reading.text),
                "loss": rounded(reading.loss, 3),
                "mean_loss": None if np.isnan(reading.mean_loss) else reading.mean_loss,
                "top_ids": reading.top_ids.tolist(),
                "top_p": rounded(reading.top_probabilities, 4),
                "next_rank": reading.next_rank.tolist(),
                "value": reading.value,
                "meaning": {
                    name: [
                        {"layer": s.layer, "index": s.cell, "score": s.score, "sign": s.sign}
                        for s in scores
                    ]
                    for name, scores in meaning.items()
                },
            }
        )

    async def unit(request):
        body = await json_body(request)
        run = language_run(body.get("run"))
        reading = await run_in_threadpool(run.read, string(body, "text"))
        parts = reading.unit(integer(body, "layer"), integer(body, "index"))
        return JSONResponse({"parts": {name: rounded(v, 3) for name, v in parts.items()}})

    async def select(request):
        from rnnkit.inside.span_match import select_units

        body = await json_body(request)
        run = language_run(body.get("run"))
        reading = await run_in_threadpool(run.read, string(body, "text"))
        units = select_units(
            reading.parts[reading.value],
            integer(body, "start"),
            integer(body, "end"),
            number(body, "threshold", 0.5),
            number(body, "coverage", 1.0),
            int(number(body, "before", 1)),
            int(number(body, "after", 1)),
        )
        return JSONResponse({"value": reading.value, "units": [vars(u) for u in units]})

    async def match(request):
        from rnnkit.inside.span_match import in_context, matching_runs

        body = await json_body(request)
        run = language_run(body.get("run"))
        where = body.get("where", "text")
        if where == "validation":
            found, values = await run_in_threadpool(run.validation_values)
        elif where == "text":
            reading = await run_in_threadpool(run.read, string(body, "text"))
            found, values = reading.text, reading.parts[reading.value]
        else:
            raise ApiError(400, f"where must be 'text' or 'validation', got {where!r}")
        units = body.get("units")
        if not isinstance(units, list) or not all(
            isinstance(u, dict) and all(isinstance(u.get(k), int) for k in ("layer", "index"))
            for u in units
        ):
            raise ApiError(400, "units must be a list of {layer, index, sign} objects")
        chosen = [(u["layer"], u["index"], u.get("sign", 1)) for u in units]
        need = body.get("need")
        if need is not None and (not isinstance(need, int) or isinstance(need, bool)):
            raise ApiError(400, f"need must be an integer or null, got {need!r}")
        limit = body.get("limit", 20)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_MATCHES:
            raise ApiError(400, f"limit must be an integer from 1 to {MAX_MATCHES}")
        threshold = number(body, "threshold", 0.5)
        runs_found = matching_runs(values, chosen, threshold, need)
        matches = in_context(found, runs_found[:limit])
        return JSONResponse(
            {"where": where, "total": len(runs_found), "matches": [vars(m) for m in matches]}
        )

    async def validation(request):
        run = language_run(request.query_params.get("run"))
        start = query_integer(request, "start", 0)
        length = query_integer(request, "length", 2000)
        return JSONResponse(await run_in_threadpool(run.stretch, start, length))

    async def sample(request):
        from rnnkit.generation.sampling import WEIGHTS, check_sampling, generate_traced

        query = request.query_params
        run = language_run(query.get("run"))
        prime = query.get("prime") or "\n"
        check_length(prime)
        length = query_integer(request, "length", 500)
        if not 1 <= length <= MAX_SAMPLE:
            raise ApiError(400, f"length must be between 1 and {MAX_SAMPLE}, got {length}")
        temperature = query_number(request, "temperature", 1.0)
        top_k = query_integer(request, "top_k", 0) or None
        top_p = query_number(request, "top_p", 1.0)
        check_sampling(temperature, top_k, top_p, len(run.vocabulary))
        seed = query_integer(request, "seed", -1)
        layer, index = query_integer(request, "layer", 0), query_integer(request, "index", 0)
        part = query.get("part", "h")
        rnn = run.model.rnn
        if part not in ("h", "c") or (part == "c" and "c" not in rnn.cell.states):
            raise ApiError(400, f"part must be h (or c for an LSTM) while sampling, got {part!r}")
        if not (0 <= layer < rnn.num_layers and 0 <= index < rnn.hidden_size):
            raise ApiError(422, f"unit {layer}:{index} is out of range for this model")
        ids = run.vocabulary.encode(prime).astype("int64").tolist()
        weights = query.get("weights", "float32")
        if weights not in WEIGHTS:
            raise ApiError(400, f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
        generated = generate_traced(
            run.model, ids, length, seed if seed >= 0 else None, temperature, top_k, top_p, weights
        )

        def next_chunk() -> tuple[str, list[float]]:
            symbols, values = [], []
            until = time.monotonic() + STREAM_EVERY
            for symbol, state in generated:
                values.append(round(unit_value(state, part, layer, index), 3))
                symbols.append(symbol)
                if time.monotonic() > until:
                    break
            return run.vocabulary.decode(symbols), values

        async def events():
            while True:
                chunk, values = await run_in_threadpool(next_chunk)
                if not chunk:
                    break
                yield f"data: {json.dumps({'text': chunk, 'values': values})}\n\n"
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def task(request):
        body = await json_body(request)
        run = runs.get(run_name(body.get("run")))
        if not isinstance(run, TaskRun):
            known = ", ".join(n for n, r in runs.items() if isinstance(r, TaskRun)) or "none"
            raise ApiError(404, f"no task run named {body.get('run')!r}; the task runs: {known}")
        return JSONResponse(await run_in_threadpool(run.answer, string(body, "text")))

    async def api_error(request, error: ApiError):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    async def usage_error(request, error: Exception):
        status = 413 if isinstance(error, TextTooLong) else 422
        return JSONResponse({"error": str(error)}, status_code=status)

    async def http_error(request, error: HTTPException):
        message = {404: "not found: the explorer serves /, /assets/* and /api/*"}
        text = message.get(error.status_code, error.detail)
        return JSONResponse({"error": text}, status_code=error.status_code)

    async def unexpected(request, error: Exception):
        log.exception("the explorer failed on %s", request.url.path)
        return JSONResponse(
            {"error": f"internal error ({type(error).__name__}); the server's log has the details"},
            status_code=500,
        )

    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(
        middleware=middleware,
        routes=[
            Route("/", index),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/assets/{name}", asset),
            Route("/api/runs", list_runs),
            Route("/api/read", read_text, methods=["POST"]),
            Route("/api/unit", unit, methods=["POST"]),
            Route("/api/select", select, methods=["POST"]),
            Route("/api/match", match, methods=["POST"]),
            Route("/api/validation", validation),
            Route("/api/sample", sample),
            Route("/api/task", task, methods=["POST"]),
        ],
        exception_handlers={
            ApiError: api_error,
            UsageError: usage_error,
            CheckpointError: usage_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )


async def json_body(request: Request) -> dict:
    """The request's JSON object, read at most MAX_BODY bytes far."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"the request is {int(declared):,} bytes; at most {MAX_BODY:,}")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_BODY:
            raise ApiError(413, f"the request is over {MAX_BODY:,} bytes: send a shorter text")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body must be a JSON object") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return document


def run_name(value: object) -> str | None:
    """The ``run`` field: a run's name (a string), or absent; anything else is the caller's
    mistake, 400, not a lookup that fails."""
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"'run' must be a run's name (a string), got {type(value).__name__}")
    return value


def string(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise ApiError(400, f"{name!r} must be a string")
    return value


def integer(body: dict, name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"{name!r} must be an integer")
    return value


def number(body: dict, name: str, default: float) -> float:
    value = body.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
        raise ApiError(400, f"{name!r} must be a finite number")
    return float(value)


def query_integer(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None


def query_number(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a number, got {raw!r}") from None


def rounded(values: np.ndarray, digits: int) -> list:
    """A JSON-ready list; NaN becomes null."""
    values = np.round(np.asarray(values, dtype=np.float64), digits)
    return [None if v != v else v for v in values.tolist()] if values.ndim == 1 else values.tolist()
