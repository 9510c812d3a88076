"""The SVG bar chart: bars scale to the largest value, labels and values are escaped and printed."""

from xml.etree import ElementTree

from core.charts import bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_scale_to_the_largest_value_and_values_are_printed():
    svg = bar_chart([("Mon", 10), ("Tue", 5), ("Wed", 0), ("Thu", -3)], title="Reads", fmt=lambda v: f"{v} reads")
    root = ElementTree.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))  # noqa: S314 - our own output
    heights = [int(rect.get("height")) for rect in root.iter(f"{SVG}rect")]
    assert heights[0] == 2 * heights[1]
    assert heights[2:] == [0, 0]
    assert "10 reads" in svg
    assert "-3 reads" in svg


def test_labels_are_escaped():
    svg = bar_chart([("<script>alert(1)</script>", 1)], title="x & <y>")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "x &amp; &lt;y&gt;" in svg
