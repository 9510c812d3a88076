"""Small server-drawn charts: inline SVG, no script, readable without colour (values are printed too).

Pages that show quantities people would rather look at than read (turnaround, volume, money, coverage)
call ``bar_chart`` and put the table of the same numbers beside it for screen readers and copying.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

BAR_GAP = 6
LABEL_HEIGHT = 18
VALUE_HEIGHT = 14


def bar_chart(points: Sequence[tuple[str, int | float]], *, title: str, fmt: Callable[[float], str] = str,
              height: int = 160, bar_width: int = 36, css_class: str = "chart") -> SafeString:
    """One bar per (label, value); negative values are drawn as zero-height bars with their value printed."""
    top = max((max(value, 0) for _, value in points), default=0) or 1
    plot = height - LABEL_HEIGHT - VALUE_HEIGHT
    width = max(len(points), 1) * (bar_width + BAR_GAP) + BAR_GAP
    parts = []
    for index, (label, value) in enumerate(points):
        x = BAR_GAP + index * (bar_width + BAR_GAP)
        bar = round(plot * max(value, 0) / top)
        y = VALUE_HEIGHT + plot - bar
        parts.append(format_html(
            '<g><title>{}: {}</title><rect x="{}" y="{}" width="{}" height="{}" rx="2"></rect>'
            '<text class="chart-value" x="{}" y="{}" text-anchor="middle">{}</text>'
            '<text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text></g>',
            label, fmt(value), x, y, bar_width, bar, x + bar_width / 2, y - 3, fmt(value), x + bar_width / 2,
            height - 4, label))
    return mark_safe(  # noqa: S308 - every piece above is built with format_html (escaped)
        f'<svg class="{escape(css_class)}" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title>{"".join(parts)}</svg>')
