"""The report of ``smarties bench report``: measured vs published per kind, where SMARTIES stands, a chart.

:func:`write_report` writes ``report.md``, ``results.csv``, ``results.json`` and ``paper_table.png``; the sections
of the three kinds of results (``real``, ``real-data``, ``smoke``) are never mixed, and smoke numbers never reach
the chart.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_path, write_text
from .run import atomic_write_json, load_results
from .table import KINDS, Table, load_table

__all__ = ["render_report", "standing_section", "write_chart", "write_report"]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _status(result: dict[str, Any]) -> str:
    if result["status"] == "ok":
        return "ok"
    return result.get("reason") or result["status"]


def render_report(out: Path | Sequence[Path], table: Table | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Markdown report (one section per kind, never mixed) and the flat list of result rows behind it."""
    sections = []
    flat: list[dict[str, Any]] = []
    titles = {
        "real": "Paper table: measured vs published (real data, official weights)",
        "real-data": "Real-data rows (registry-shipped real imagery, CPU; wiring checks, not benchmarks)",
        "smoke": "Smoke run (tiny generated data, 2-block random backbone: proves the wiring, measures nothing)",
    }
    table = table if table is not None else load_table()
    order = {r.id: i for i, r in enumerate([*table.rows, *table.real_data_rows])}
    for kind in KINDS:
        results = load_results(out, kind)
        results.sort(key=lambda r: (order.get(r["row"], len(order)), str(r.get("backbone"))))
        if not results:
            continue
        lines = [f"## {titles[kind]}", ""]
        if kind == "smoke":
            lines += [
                "| row | backbone | protocol | metric | max over evals | last epoch | status | wall s |",
                "|---|---|---|---|---|---|---|---|",
            ]
        else:
            lines += [
                "| row | backbone | protocol | metric | max over evals | last epoch | compared | published | "
                "difference | status | wall s |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
        for r in results:
            ok = r["status"] == "ok"
            measured = r.get("value") if ok else None
            diff = r.get("difference") if kind == "real" else None
            entry = {
                "kind": kind,
                "row": r["row"],
                "backbone": r.get("backbone"),
                "protocol": r.get("protocol"),
                "protocol_variant": (r.get("protocol_variant") or {}).get("variant"),
                "metric": r.get("metric"),
                "value_max": r.get("value_max", measured) if ok else None,
                "value_last": r.get("value_last", measured) if ok else None,
                "measured": measured,
                "reported_as": r.get("reported_as"),
                "published": r.get("published"),
                "difference": diff,
                "provenance": r.get("provenance"),
                "status": _status(r),
                "wall_time_s": r.get("wall_time_s"),
                "weights_sha256": (r.get("weights") or {}).get("sha256"),
                "weights_revision": (r.get("weights") or {}).get("revision"),
                "feature_cache": bool((r.get("feature_cache") or {}).get("used")),
                "notes": "; ".join(r.get("notes") or []),
            }
            flat.append(entry)
            cells = [r["row"], str(r.get("backbone")), str(r.get("protocol")), str(r.get("metric"))]
            cells += [_fmt(entry["value_max"]), _fmt(entry["value_last"])]
            if kind != "smoke":
                compared = "n/a" if measured is None else f"{measured:.2f} ({_short(r.get('reported_as'))})"
                cells += [compared, _fmt(r.get("published")), "n/a" if diff is None else f"{diff:+.2f}"]
            cells += [entry["status"].replace("|", "/"), f"{r['wall_time_s']:.1f}" if ok else ""]
            lines.append("| " + " | ".join(cells) + " |")
        notes = sorted({n for r in results for n in (r.get("notes") or [])})
        if notes:
            lines += ["", "Notes:"] + [f"- {n}" for n in notes]
        sections.append("\n".join(lines))
    if not sections:
        where = out if isinstance(out, str | Path) else ", ".join(map(str, out))
        return f"No results under {where} (run `smarties bench run --out DIR` first).\n", flat
    sections.append(standing_section(table, load_results(out, "real")))
    variants = sorted({e["protocol_variant"] for e in flat if e["protocol_variant"]})
    header = (
        "# SMARTIES paper table\n\n"
        "Published values and their sources: the benchmark table (`smarties bench run --table`; each row's "
        "source is its provenance in the JSON/CSV). *max over evals*: the maximum over a row's periodic "
        "evaluations on the val list (what the authors' logs report); *last epoch*: the final weights' value; "
        "*compared*: the value set against the published number (max for the authors' rows, the test split at "
        "the best-val checkpoint for PANGAEA's). Differences are compared - published, only for real runs. "
        f"Protocol variant: {', '.join(variants) or 'n/a'}.\n\n"
    )
    return header + "\n\n".join(sections) + "\n", flat


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def standing_section(table: Table, real: Sequence[dict[str, Any]]) -> str:
    """Markdown: per paper row, SMARTIES' published and measured values beside the peers' published numbers.

    Peers come from the table's ``peers`` (values with their source and protocol, never measured here); the rank is
    that of SMARTIES' published ViT-B value (else ViT-L) among the ranked peers (``ranked: false``: another
    protocol, or a second source for a model already ranked).
    """
    measured = {(r["row"], r.get("backbone")): r.get("value") for r in real if r.get("status") == "ok"}
    lines = [
        "## Where SMARTIES stands (peers: published numbers with their sources, never measured here)",
        "",
        "| row | metric | SMARTIES published | SMARTIES measured | best peer (published) | rank of SMARTIES |",
        "|---|---|---|---|---|---|",
    ]
    details = ["", "| row | peer | value | source | protocol |", "|---|---|---|---|---|"]
    for row in table.rows:
        pub = {bb: v.value for bb, v in row.published.items()}
        published = " / ".join(f"{bb} {_fmt(v)}" for bb, v in pub.items()) or "n/a"
        got = " / ".join(
            f"{bb} {'not measured' if measured.get((row.id, bb)) is None else _fmt(measured[(row.id, bb)])}"
            for bb in pub
        ) or "n/a"
        ranked = sorted((p for p in row.peers if p.ranked), key=lambda p: -p.value)
        best = f"{ranked[0].model} {_fmt(ranked[0].value)}" if ranked else "none recorded"
        own = pub.get("vitb") if pub.get("vitb") is not None else pub.get("vitl")
        rank = "n/a" if own is None or not ranked else (
            f"{_ordinal(1 + sum(p.value > own for p in ranked))} of {len(ranked) + 1}"
        )
        lines.append(f"| {row.id} | {row.metric} | {published} | {got} | {best} | {rank} |")
        for p in row.peers:
            details.append(f"| {row.id} | {p.model} | {_fmt(p.value)} | {p.source} | {p.protocol} |")
    return "\n".join(lines + details)


def _short(reported_as: str | None) -> str:
    """``max`` or e.g. ``test split, best checkpoint`` (the compared value's label, without the long note)."""
    if not reported_as:
        return "?"
    return "max" if reported_as.startswith("max") else reported_as.split(" (")[0]


def write_chart(flat: list[dict[str, Any]], path: Path) -> Path:
    """Bar chart of measured vs published per (row, backbone): real and real-data results only, never smoke."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [e for e in flat if e["kind"] != "smoke" and (e["measured"] is not None or e["published"] is not None)]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5))
    if rows:
        labels = [f"{e['row']}\n{e['backbone']} ({e['kind']})" for e in rows]
        x = range(len(rows))
        measured = [e["measured"] if e["measured"] is not None else 0.0 for e in rows]
        published = [e["published"] if e["published"] is not None else 0.0 for e in rows]
        ax.bar([i - 0.2 for i in x], measured, width=0.4, label="measured", color="#1f77b4")
        ax.bar([i + 0.2 for i in x], published, width=0.4, label="published", color="#aaaaaa")
        for i, e in enumerate(rows):
            if e["measured"] is None:
                ax.text(i - 0.2, 1, "not measured", rotation=90, ha="center", va="bottom", fontsize=7)
            if e["published"] is None:
                ax.text(i + 0.2, 1, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(x), labels, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("metric (%)")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no real or real-data results yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title("SMARTIES paper table: measured vs published (smoke results excluded)")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:  # the temporary name keeps the suffix: savefig infers the format
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return path


def write_report(out: Path | Sequence[Path], report_dir: Path | None = None) -> str:
    """Write ``report.md``, ``results.csv``, ``results.json`` and ``paper_table.png`` (default: under the first
    results folder); return the markdown. Several folders are merged
    (:func:`~smarties_terratorch.bench.run.load_results`)."""
    markdown, flat = render_report(out)
    report_dir = report_dir or (Path(out) if isinstance(out, str | Path) else Path(out[0])) / "report"
    write_text(report_dir / "report.md", markdown)
    atomic_write_json(report_dir / "results.json", flat)
    fields = ["kind", "row", "backbone", "protocol", "protocol_variant", "metric", "value_max", "value_last"]
    fields += ["measured", "reported_as", "published", "difference", "provenance", "status", "wall_time_s"]
    fields += ["weights_sha256", "weights_revision", "feature_cache", "notes"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(flat)
    write_text(report_dir / "results.csv", text.getvalue())
    write_chart(flat, report_dir / "paper_table.png")
    return markdown

