"""A report's Markdown as one self-contained HTML page (``nmt compare``'s ``report.html``)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path


def markdown_page(markdown: str, figures: dict[str, Path]) -> str:
    """A small Markdown subset (headings, tables, images, bullets) -> one HTML page with
    every image embedded as base64, so the file can be mailed or opened anywhere."""
    body, table = [], []

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", lambda m: _img(m.group(2), m.group(1), figures), text)
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
            body.append("<table>" + "".join(
                "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{inline(c)}</{'th' if i == 0 else 'td'}>" for c in row)
                + "</tr>" for i, row in enumerate(cells)) + "</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.startswith("- "):
            body.append(f"<div class=li>&bull; {inline(line[2:])}</div>")
        elif line.strip():
            images_only = not re.sub(r"!\[[^\]]*\]\([^)]+\)", "", line).strip()
            body.append(f"<p{' class=row' if images_only else ''}>{inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%;vertical-align:top;margin:4px}"
             ".row{display:flex;gap:8px;align-items:flex-start}.row img{flex:1;min-width:0;max-width:60%}")
    return f"<!doctype html><html><head><meta charset=utf-8><title>nmt compare</title><style>{style}</style></head>" \
           f"<body>{''.join(body)}</body></html>"


def _img(name: str, alt: str, figures: dict[str, Path]) -> str:
    path = figures.get(html.unescape(name))
    if path is None:
        return f"[{alt}]"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'
