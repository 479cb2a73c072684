"""Copy front-end files installed by `npm ci` into truenorth/static/vendor (git-ignored).

Run by `make setup`; nothing here is committed, and nothing is fetched at run time.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node_modules"
VENDOR = ROOT / "truenorth" / "static" / "vendor"

FILES = {
    "htmx.org/dist/htmx.min.js": "htmx/htmx.min.js",
    "@picocss/pico/css/pico.min.css": "pico/pico.min.css",
    "vega/build/vega.min.js": "vega/vega.min.js",
    "vega-lite/build/vega-lite.min.js": "vega/vega-lite.min.js",
    "vega-embed/build/vega-embed.min.js": "vega/vega-embed.min.js",
}


def main() -> int:
    missing = [src for src in FILES if not (NODE / src).exists()]
    if missing:
        print(f"error: run `npm ci` first; missing {', '.join(missing)}", file=sys.stderr)
        return 1
    for src, dst in FILES.items():
        target = VENDOR / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NODE / src, target)
    print(f"copied {len(FILES)} front-end files into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
