"""What the viewer's browser test and bench/viewer.py ask the page (plain strings: no Django needed)."""

# Resolves (with performance.now(), ms since the viewer page's navigation started) once the viewport's
# canvas shows an image: enough pixels brighter than the black background.
FIRST_IMAGE = """() => {
  const canvas = document.querySelector('.cornerstone-canvas');
  if (!canvas || !canvas.width) return false;
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  for (let i = 0; i < pixels.length; i += 4 * 97) if (pixels[i] > 20) lit++;
  return lit > 200 ? performance.now() : false;
}"""


def overlay_shows(corner: str, text: str) -> str:
    """A page function that is true once the viewer's overlay in that corner contains the text."""
    return f"() => document.querySelector('[data-cy=\"viewport-overlay-{corner}\"]')?.innerText.includes('{text}')"
