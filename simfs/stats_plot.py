"""`simfs stats --plot out.png`: one figure of where a store's bytes went (kinds, savings, chain depths)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ExitCode, SimfsError
from .units import human_bytes as _human

WIDTH_PX, HEIGHT_PX, DPI = 1200, 800, 100  # the PNG's size, documented in README
KIND_COLOURS = {"verbatim": "#9e9e9e", "intra": "#4c72b0", "inter": "#55a868", "pixel-duplicate": "#c44e52",
                "pinned": "#8172b2", "catalog": "#dd8452"}


def _mib(n: float) -> float:
    return n / (1 << 20)




def _empty(ax: Any, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no objects yet", transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _bytes_by_kind(ax: Any, stats: dict[str, Any]) -> None:
    """Bytes on disk by kind (stacked), beside the logical bytes of the same objects."""
    kinds = [k for k, v in stats["by_kind"].items() if v["objects"]]
    left_logical = left_stored = 0.0
    for kind in kinds:
        k = stats["by_kind"][kind]
        colour = KIND_COLOURS.get(kind, "#333333")
        ax.barh(1, _mib(k["logical_bytes"]), left=left_logical, color=colour, label=f"{kind} ({k['objects']})")
        ax.barh(0, _mib(k["stored_bytes"]), left=left_stored, color=colour)
        left_logical += _mib(k["logical_bytes"])
        left_stored += _mib(k["stored_bytes"])
    ax.barh(0, _mib(stats["catalog_bytes"]), left=left_stored, color=KIND_COLOURS["catalog"], label="catalog")
    ax.set_yticks([0, 1], ["on disk", "content"])
    ax.set_xlabel("MiB")
    ax.set_title("where the bytes went, by kind (objects)")
    if kinds or stats["catalog_bytes"]:
        ax.legend(loc="lower right", fontsize=8)


def _savings(ax: Any, stats: dict[str, Any]) -> None:
    """Logical size vs coding every object on its own vs what is stored."""
    labels = ["logical\n(ls -l)", "unique\ncontent", "intra-only\n+ catalog", "stored\non disk"]
    values = [stats["logical_bytes"], stats["unique_bytes"], stats["intra_only_bytes"] + stats["catalog_bytes"],
              stats["stored_bytes"]]
    bars = ax.bar(labels, [_mib(v) for v in values], color=["#bbbbbb", "#999999", "#4c72b0", "#55a868"])
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(f"{_mib(value):.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("MiB")
    logical, saved = stats["logical_bytes"], stats["saved_vs_logical"]
    vs_logical = f"{abs(saved) / logical:.1%}" if logical else "-"
    word = "saved" if saved >= 0 else "overhead"
    refs = stats["saved_vs_intra_only"]
    ax.set_title(f"{word} vs logical {_human(abs(saved))} ({vs_logical}); references "
                 f"{'save' if refs >= 0 else 'cost'} {_human(abs(refs))} vs intra-only", fontsize=10)


def _depths(ax: Any, stats: dict[str, Any]) -> None:
    hist = {int(d): n for d, n in stats["depth_histogram"].items()}
    if not hist:
        return _empty(ax, "chain depths")
    depths = list(range(0, max(hist, default=0) + 1))
    ax.bar([str(d) for d in depths], [hist.get(d, 0) for d in depths], color="#55a868")
    ax.set_xlabel("reference chain depth (0: stored on its own)")
    ax.set_ylabel("objects")
    ax.set_title("chain depths")


def _objects(ax: Any, stats: dict[str, Any]) -> None:
    """Per kind: stored / logical, the ratio each kind achieves."""
    kinds = [k for k, v in stats["by_kind"].items() if v["objects"] and v["logical_bytes"]]
    if not kinds:
        return _empty(ax, "ratio by kind")
    ratios = [stats["by_kind"][k]["stored_bytes"] / stats["by_kind"][k]["logical_bytes"] for k in kinds]
    ax.bar(kinds, ratios, color=[KIND_COLOURS.get(k, "#333333") for k in kinds])
    ax.axhline(1.0, color="#333333", linewidth=0.8)
    ax.set_ylabel("stored / logical")
    ax.set_title("ratio by kind (below 1: smaller than the files)")


def write_plot(stats: dict[str, Any], out: Path) -> None:
    """Render the four panels to out (PNG, WIDTH_PX x HEIGHT_PX)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no GUI backend, no global state
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    _bytes_by_kind(axes[0][0], stats)
    _savings(axes[0][1], stats)
    _depths(axes[1][0], stats)
    _objects(axes[1][1], stats)
    fig.suptitle(f"simfs store {stats['store']}: {stats['files']} files, {stats['objects']} objects")
    fig.tight_layout()
    try:
        fig.savefig(out, format="png", dpi=DPI)
    except OSError as exc:
        raise SimfsError(f"cannot write the plot to {out}: {exc.strerror}", ExitCode.USAGE) from None
