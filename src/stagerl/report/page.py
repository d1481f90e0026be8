"""One page, two renderings: a self-contained HTML file (images inlined as base64 PNG data URIs)
and its markdown twin (images written beside it as PNG files). Both come from the same blocks, so
they show the same numbers."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1.2em;color:#1f2328}
h1{font-size:1.7em;border-bottom:2px solid #d0d7de;padding-bottom:.2em}
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:.15em}
h3{font-size:1.05em;margin-top:1.2em}
table{border-collapse:collapse;margin:.6em 0 1em;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap}
img{max-width:100%;height:auto;display:block;margin:.5em 0 1em;border:1px solid #eee}
.missing{color:#6e7781;font-style:italic}.note{background:#fff8c5;border-left:4px solid #d4a72c;
padding:.3em .7em;margin:.5em 0}.warn{background:#ffebe9;border-left:4px solid #cf222e;padding:.3em .7em}
nav{font-size:.9em;color:#57606a}nav a{margin-right:.8em}code{background:#f6f8fa;padding:0 .25em}
"""


NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+( \[[-+\d., ]+\])?$")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-") or "x"


@dataclass
class Page:
    """An ordered list of blocks: ``(kind, ...)`` tuples built with the methods below."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.blocks.append(("h2", title))

    def sub(self, title: str) -> None:
        self.blocks.append(("h3", title))

    def text(self, text: str) -> None:
        self.blocks.append(("p", text))

    def note(self, text: str) -> None:
        self.blocks.append(("note", text))

    def warn(self, text: str) -> None:
        self.blocks.append(("warn", text))

    def missing(self, text: str) -> None:
        """A section whose input files are absent: said briefly, not an error."""
        self.blocks.append(("missing", text))

    def table(self, header: list[str], rows: list[list], name: str) -> None:
        """A table; ``name`` becomes its HTML id (``table-<name>``) for readers and tests."""
        self.blocks.append(("table", header, [[str(c) for c in r] for r in rows], name))

    def image(self, png: bytes | None, name: str, alt: str) -> None:
        """A figure (PNG bytes); ``None`` (nothing to draw) adds nothing."""
        if png:
            self.blocks.append(("img", png, name, alt))

    # ------------------------------------------------------------------ renderings

    def html(self) -> str:
        toc = [f'<a href="#{slug(b[1])}">{html.escape(b[1])}</a>' for b in self.blocks if b[0] == "h2"]
        out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
               f"<title>{html.escape(self.title)}</title>", f"<style>{CSS}</style></head><body>",
               f"<h1>{html.escape(self.title)}</h1>", f"<nav>{''.join(toc)}</nav>"]
        for b in self.blocks:
            kind = b[0]
            if kind == "h2":
                out.append(f'<h2 id="{slug(b[1])}">{html.escape(b[1])}</h2>')
            elif kind == "h3":
                out.append(f"<h3>{html.escape(b[1])}</h3>")
            elif kind in ("p", "note", "warn", "missing"):
                cls = "" if kind == "p" else f' class="{kind}"'
                out.append(f"<p{cls}>{_inline(b[1])}</p>")
            elif kind == "table":
                _, header, rows, name = b
                out.append(f'<table id="table-{slug(name)}"><thead><tr>'
                           + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>")
                for r in rows:
                    out.append("<tr>" + "".join(f'<td class="num">{html.escape(c)}</td>' if NUMBER.match(c)
                                                else f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
                out.append("</tbody></table>")
            elif kind == "img":
                _, png, name, alt = b
                data = base64.b64encode(png).decode()
                out.append(f'<img id="fig-{slug(name)}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def markdown(self, out_dir: Path) -> str:
        """The markdown twin; writes each image as ``<out_dir>/<name>.png``."""
        md = [f"# {self.title}", ""]
        for b in self.blocks:
            kind = b[0]
            if kind == "h2":
                md += [f"## {b[1]}", ""]
            elif kind == "h3":
                md += [f"### {b[1]}", ""]
            elif kind == "p":
                md += [b[1], ""]
            elif kind in ("note", "warn"):
                md += [f"> **{'Note' if kind == 'note' else 'Warning'}:** {b[1]}", ""]
            elif kind == "missing":
                md += [f"*{b[1]}*", ""]
            elif kind == "table":
                _, header, rows, _name = b
                md.append("| " + " | ".join(_cell(h) for h in header) + " |")
                md.append("|" + "---|" * len(header))
                md += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
                md.append("")
            elif kind == "img":
                _, png, name, alt = b
                (out_dir / f"{slug(name)}.png").write_bytes(png)
                md += [f"![{alt}]({slug(name)}.png)", ""]
        return "\n".join(md)

    def write(self, out_dir: Path) -> Path:
        """Write ``index.html`` and ``report.md`` into ``out_dir``; return the HTML path."""
        out_dir.mkdir(parents=True, exist_ok=True)
        from ..rundir import write_text

        write_text(out_dir / "report.md", self.markdown(out_dir))
        return write_text(out_dir / "index.html", self.html())


def _inline(text: str) -> str:
    """Escape, then render `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
