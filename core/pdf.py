"""What every PDF ReadRoom prints shares: fonts that cover the names people really have."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

# DejaVu Sans from Debian's fonts-dejavu-core (embedded, subset) covers Latin, Greek and Cyrillic; the
# CJK names fall back to reportlab's CID fonts (not embedded: the reader's viewer supplies the glyphs).
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
CJK_FONTS = {"han": "STSong-Light", "kana": "HeiseiMin-W3", "hangul": "HYSMyeongJo-Medium"}


@cache
def fonts() -> tuple[str, str]:
    """(regular, bold) font names, registering DejaVu Sans and the CJK fallbacks once per process."""
    for name in CJK_FONTS.values():
        pdfmetrics.registerFont(UnicodeCIDFont(name))
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if not (regular.exists() and bold.exists()):
        return "Helvetica", "Helvetica-Bold"
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
    pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
    pdfmetrics.registerFontFamily("DejaVuSans", normal="DejaVuSans", bold="DejaVuSans-Bold")
    return "DejaVuSans", "DejaVuSans-Bold"
