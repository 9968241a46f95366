"""The geometry of the reports' chart, drawn as inline SVG by ``_chart.html``: clicks as bars
on the left scale, conversions as a line on the right scale (they are fewer by far)."""

import math

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 40, 12, 28
MAX_LABELS = 8


def nice_max(value):
    """The scale's top: ``value`` rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def chart_geometry(series, width=WIDTH, height=HEIGHT):
    """Bars, line points, ticks and labels for ``[(label, clicks, conversions), ...]``."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    clicks_top = nice_max(max((p[1] for p in series), default=0))
    conv_top = nice_max(max((p[2] for p in series), default=0))
    slot = plot_w / max(len(series), 1)
    bars, points = [], []
    for i, (label, clicks, conversions) in enumerate(series):
        x = LEFT + i * slot
        bar_h = plot_h * clicks / clicks_top
        bars.append(
            {
                "x": round(x + slot * 0.15, 1),
                "y": round(TOP + plot_h - bar_h, 1),
                "w": round(max(slot * 0.7, 1), 1),
                "h": round(bar_h, 1),
                "label": label,
                "clicks": clicks,
                "conversions": conversions,
            }
        )
        points.append((round(x + slot / 2, 1), round(TOP + plot_h - plot_h * conversions / conv_top, 1)))
    every = max(1, math.ceil(len(series) / MAX_LABELS))
    labels = [
        {"x": round(LEFT + (i + 0.5) * slot, 1), "text": _short(label)}
        for i, (label, _, _) in enumerate(series)
        if i % every == 0
    ]
    ticks = [
        {
            "y": round(TOP + plot_h - plot_h * f, 1),
            "clicks": _num(clicks_top * f),
            "conversions": _num(conv_top * f),
        }
        for f in (0, 0.5, 1)
    ]
    return {
        "width": width,
        "height": height,
        "left": LEFT,
        "right": width - RIGHT,
        "top": TOP,
        "bottom": TOP + plot_h,
        "bars": bars,
        "points": points,
        "line": " ".join("%s,%s" % p for p in points),
        "labels": labels,
        "ticks": ticks,
    }


def _short(label):
    """``2024-05-01`` → ``05-01``; ``2024-05-01 13:00`` → ``13:00``."""
    return label[11:] if len(label) > 10 else label[5:]


def _num(value):
    return ("%d" % value) if value == int(value) else ("%.1f" % value)
