"""Pictures of `simfs similar --groups`: a self-contained HTML page and a contact-sheet PNG, with thumbnails."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from PIL import Image, ImageDraw

from .groups import Group, Groups, Member
from .units import human_bytes as human

THUMB = 128  # thumbnail box, pixels
CELL_W = THUMB + 16
PAD = 12
HEADER_H = 36  # sheet title line
LABEL_H = 22  # a group's title line
CAPTION_H = 30  # two caption lines under each thumbnail
ROW_H = LABEL_H + THUMB + CAPTION_H + PAD
MAX_COLS = 8  # thumbnails per group on the sheet; the last cell says how many more




def thumbnail(member: Member) -> Image.Image:
    """The member's picture read through the mount (so encoded objects are rebuilt), at most THUMB square."""
    if member.paths:
        try:
            with Image.open(member.paths[0]) as img:
                # a palette with transparency goes through RGBA, as Pillow asks (it warns otherwise)
                src = img.convert("RGBA") if img.mode == "P" and "transparency" in img.info else img
                src.thumbnail((THUMB, THUMB))
                rgb = src.convert("RGB")
                # a palette or grey PNG's tRNS colour (an int) would make saving the RGB copy fail
                rgb.info.pop("transparency", None)
                return rgb
        except (OSError, ValueError, Image.DecompressionBombError):
            pass  # unreadable or not decodable by Pillow: a grey box says so
    box = Image.new("RGB", (THUMB, THUMB), (200, 200, 200))
    ImageDraw.Draw(box).text((8, THUMB // 2 - 6), "pinned base" if not member.paths else "no preview",
                             fill=(60, 60, 60))
    return box


def title(i: int, g: Group) -> str:
    return (f"group {i}: {', '.join(g.relations)}; {g.files} files, {len(g.members)} objects; "
            f"{human(g.logical_bytes)} of files, {human(g.stored_bytes)} on disk")


def write_html(found: Groups, out: Path) -> None:
    names = {m.object_id: (m.paths[0] if m.paths else f"pinned {m.object_id.hex()[:16]}")
             for g in found.groups for m in g.members}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>simfs similar groups</title><style>"
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "td.n{text-align:right}img{display:block}</style></head><body>",
        f"<h1>Similar images in {html.escape(str(found.mountpoint))}</h1>",
        f"<p class='summary'>{len(found.groups)} groups; {found.images} images indexed"
        + (f"; {found.undescribed} objects not described yet (in no group yet)" if found.undescribed else "")
        + ". Groups are connected components of verified similarity, reference-chain links and "
        "byte-identical copies; on-disk bytes are each object's file (an inter object is stored as a "
        "difference to its base).</p>",
    ]
    for i, g in enumerate(found.groups, 1):
        parts.append(f"<section class='group' id='group-{i}'><h2>{html.escape(title(i, g))}</h2>")
        parts.append("<table><tr><th>picture</th><th>files</th><th>stored as</th><th>size</th>"
                     "<th>on disk</th></tr>")
        for m in g.members:
            buf = io.BytesIO()
            thumbnail(m).save(buf, format="PNG")
            src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            stored_as = m.kind + (f" against {html.escape(names.get(m.base, m.base.hex()[:16]))}" if m.base else "")
            files = "<br>".join(f"<span class='path'>{html.escape(p)}</span>" for p in m.paths) or \
                f"(no file: kept as a base, {m.object_id.hex()[:16]})"
            parts.append(f"<tr class='member'><td><img src='{src}' alt=''></td><td>{files}</td>"
                         f"<td>{stored_as}</td><td class='n'>{m.size}</td><td class='n'>{m.stored}</td></tr>")
        links = "; ".join(f"{html.escape(os.path.basename(names[a]))} ~ {html.escape(os.path.basename(names[b]))}: "
                          f"{rel}" for a, b, rel in g.links)
        parts.append(f"</table><p class='links'>{links}</p></section>" if links else "</table></section>")
    parts.append("</body></html>\n")
    out.write_text("\n".join(parts))


def sheet_size(groups: int) -> tuple[int, int]:
    return 2 * PAD + MAX_COLS * CELL_W, HEADER_H + max(1, groups) * ROW_H


def write_sheet(found: Groups, out: Path) -> None:
    sheet = Image.new("RGB", sheet_size(len(found.groups)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), f"simfs: {len(found.groups)} groups of similar images in {found.mountpoint}",
              fill=(0, 0, 0))
    if not found.groups:
        draw.text((PAD, HEADER_H + LABEL_H), "no similar images stored", fill=(90, 90, 90))
    for row, g in enumerate(found.groups):
        y = HEADER_H + row * ROW_H
        draw.text((PAD, y + 4), title(row + 1, g), fill=(0, 0, 120))
        shown = g.members if len(g.members) <= MAX_COLS else g.members[:MAX_COLS - 1]
        for col, m in enumerate(shown):
            x = PAD + col * CELL_W
            thumb = thumbnail(m)
            sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + LABEL_H + (THUMB - thumb.height) // 2))
            name = os.path.basename(m.paths[0]) if m.paths else "pinned base"
            copies = f" x{len(m.paths)}" if len(m.paths) > 1 else ""
            draw.text((x, y + LABEL_H + THUMB + 2), (name[:20] + copies), fill=(0, 0, 0))
            draw.text((x, y + LABEL_H + THUMB + 15), f"{m.kind} {human(m.stored)}", fill=(90, 90, 90))
        if len(g.members) > MAX_COLS:
            x = PAD + (MAX_COLS - 1) * CELL_W
            draw.text((x + 8, y + LABEL_H + THUMB // 2), f"+{len(g.members) - MAX_COLS + 1} more", fill=(0, 0, 0))
    sheet.save(out, format="PNG")
