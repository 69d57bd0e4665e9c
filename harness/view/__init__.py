"""`harness view`: every item of a run, every variant's answer, and two runs side by side, in the browser.

    harness view RUN_DIR [ACCEPTED_RUN_DIR]          serve the view on 127.0.0.1 until Ctrl-C
    harness view RUN_DIR --out view.html             the same view as one self-contained file
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.rundir import RunFolder
from harness.view.model import ViewModel


def _records_mb(run_dir: Path) -> float:
    path = RunFolder(run_dir).records_path
    return path.stat().st_size / 1e6 if path.is_file() else 0.0


def view(run_dir: Path, other: Path | None = None, *, out: Path | None = None, port: int = 0,
         open_browser: bool = True, max_drop: float = 0.02, alpha: float = 0.05) -> int:
    big = [p for p in (run_dir, other) if p is not None and _records_mb(Path(p)) > 50]
    if big:
        print(f"reading {', '.join(str(p) for p in big)} (a large run: a few seconds) ...", flush=True)
    model = ViewModel(Path(run_dir), Path(other) if other is not None else None, max_drop=max_drop, alpha=alpha)
    if out is not None:
        from harness.view.page import write_html

        path = write_html(model, out)
        print(f"wrote {path} ({len(model.ids)} items; open it in a browser, it needs nothing else)")
        return 0
    from harness.view.server import ViewServer

    server = ViewServer(model, port)
    print(f"harness view: {server.url}  ({len(model.ids)} items; Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        if not webbrowser.open(server.url):
            print("(no browser found: open the address above yourself)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.httpd.server_close()
    return 0
