"""The README's digest screenshot (include/docs/digest-640.png): the layout test's digest, laid out by
headless Chromium at 640 px, cut below the digest's last line.

    .venv/bin/python tests/digest/digest_screenshot.py include/docs/digest-640.png
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "support")]

from test_digest_layout import WIDTH, page_from_eml, realistic_digest  # noqa: E402

# A real mail server's wording (Gmail's), and a short newly suppressed list: what a reader sees first.
GMAIL_DIAGNOSTIC = (
    "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking "
    "the recipient's email address for typos or unnecessary spaces. For more information, go to "
    "https://support.google.com/mail/?p=NoSuchUser d2e1a72fcca58-7a9c0b1f3e2si1234567b3a.512 - gsmtp"
)
BACKGROUND = (245, 245, 245)  # the page's #f5f5f5 around the digest


def screenshot(out: Path, chromium: str = "chromium") -> None:
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        page = page_from_eml(realistic_digest(GMAIL_DIAGNOSTIC, suppressed=3), Path(folder))
        shot = Path(folder) / "shot.png"
        subprocess.run(
            [
                chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--virtual-time-budget=2000", f"--window-size={WIDTH},6000", f"--screenshot={shot}", page.as_uri(),
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        image = Image.open(shot).convert("RGB")
        # Rows of nothing but the page's background below the digest are cut (8 px of margin kept).
        rows = [
            y
            for y in range(image.height)
            if any(image.getpixel((x, y)) != BACKGROUND for x in range(0, WIDTH, 4))
        ]
        image.crop((0, 0, WIDTH, min(image.height, rows[-1] + 9))).save(out, optimize=True)


if __name__ == "__main__":
    screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "include/docs/digest-640.png"))
