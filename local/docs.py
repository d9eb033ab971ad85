"""Swagger UI for ``/docs``, served from npm's ``swagger-ui-dist`` (no CDN: works offline).

Swagger UI 5 (package.json pins it; ``make`` runs ``npm install``): the document is OpenAPI 3.1
(Powertools generates 3.1), which Swagger UI 4 cannot read ("Unable to render this definition"),
so the ``swagger-ui-bundle`` wheel (4.15) is not used. tests/e2e/test_e2e_pages.py opens the page
in headless Chromium and checks the rendered operations.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

__all__ = ["asset", "page"]

_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
           "favicon-32x32.png", "favicon-16x16.png", "oauth2-redirect.html")


DIST = Path(__file__).resolve().parent.parent / "node_modules" / "swagger-ui-dist"


def _bundle_dir() -> Path | None:
    return DIST if (DIST / "swagger-ui-bundle.js").is_file() else None


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Cairn API (local)</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  <style>.cairn-hint{font:14px sans-serif;margin:12px 20px;padding:8px 12px;background:#f4f7fb;
  border-left:4px solid #4990e2}.cairn-hint code{background:#e8edf3;padding:1px 4px}</style>
</head>
<body>
  <div class="cairn-hint">Local runtime. Get a token with
  <code>make token USER=alice GROUPS=staff</code> or
  <code>curl -s -X POST {base}/_local/token -d '{{"sub":"alice","groups":["staff"]}}'</code>,
  then press <b>Authorize</b> and paste it.</div>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""

# Without the wheel: a small self-contained explorer of /openapi.json (no try-it-out).
_FALLBACK = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn API (local)</title>
<style>body{{font:14px sans-serif;margin:20px}}code{{background:#eee;padding:1px 4px}}
.op{{margin:4px 0}}.m{{display:inline-block;width:70px;font-weight:bold}}</style></head>
<body><h1>Cairn API (local)</h1>
<p>Swagger UI is not installed (<code>npm install</code>: swagger-ui-dist); this page lists
<a href="/openapi.json">/openapi.json</a>. Token: <code>curl -s -X POST {base}/_local/token
-d '{{"sub":"alice","groups":["staff"]}}'</code></p><div id="ops">loading…</div>
<script>
fetch("/openapi.json").then(r => r.json()).then(doc => {{
  const out = [];
  for (const [path, item] of Object.entries(doc.paths || {{}}))
    for (const [method, op] of Object.entries(item))
      out.push(`<div class="op"><span class="m">${{method.toUpperCase()}}</span><code>${{path}}</code>
        ${{op.summary || ""}}</div>`);
  document.getElementById("ops").innerHTML = out.join("") || "no paths";
}}).catch(e => document.getElementById("ops").textContent = "cannot load /openapi.json: " + e);
</script></body></html>
"""


def page(base_url: str) -> str:
    template = _PAGE if _bundle_dir() is not None else _FALLBACK
    return template.replace("{base}", base_url).replace("{{", "{").replace("}}", "}")


def asset(name: str) -> tuple[bytes, str] | None:
    bundle = _bundle_dir()
    if bundle is None or name not in _ASSETS:
        return None
    path = bundle / name
    if not path.is_file():
        return None
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return path.read_bytes(), ctype
