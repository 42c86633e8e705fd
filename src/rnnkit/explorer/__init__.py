"""`rnnkit explore`: a local web app to play with trained runs (see cli/explore.py).

runs.py    the runs given on the command line, loaded once, and what each can answer
app.py     the HTTP API and the page (Starlette), no model logic of its own
server.py  binding the address and serving (uvicorn), Ctrl-C included
static/    the page: one HTML file, one script, one style sheet (no CDN, works offline)
"""
