"""Draw the DocFocus icon (a page with a highlighted line under a magnifier) into resources/.

Writes docfocus.png (512 px, Linux), docfocus.ico (Windows) and docfocus.icns (macOS). Needs Pillow,
which the development environment has; run it only to change the icon.
"""
from pathlib import Path

from PIL import Image, ImageDraw

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def draw(size: int = 1024) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    s = size / 1024
    d.rounded_rectangle([64 * s, 64 * s, 960 * s, 960 * s], radius=180 * s, fill=(36, 72, 140, 255))
    d.rounded_rectangle([250 * s, 150 * s, 720 * s, 870 * s], radius=40 * s, fill=(250, 250, 247, 255))
    for i, y in enumerate(range(250, 800, 80)):
        width = 380 if i % 3 else 300
        colour = (255, 205, 60, 255) if i == 3 else (150, 160, 180, 255)
        d.rounded_rectangle([310 * s, y * s, (310 + width) * s, (y + 34) * s], radius=17 * s, fill=colour)
    d.ellipse([470 * s, 420 * s, 850 * s, 800 * s], outline=(255, 140, 40, 255), width=round(48 * s))
    d.line([790 * s, 760 * s, 900 * s, 870 * s], fill=(255, 140, 40, 255), width=round(70 * s))
    return img


if __name__ == "__main__":
    icon = draw()
    icon.resize((512, 512), Image.LANCZOS).save(RESOURCES / "docfocus.png")
    icon.resize((256, 256), Image.LANCZOS).save(
        RESOURCES / "docfocus.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    icon.save(RESOURCES / "docfocus.icns")
