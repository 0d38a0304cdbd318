"""Builds resources/sample.pdf: a short field guide with facts the tests and self-test ask about.

Run `python resources/make_sample.py` to regenerate it; the PDF is committed.
"""
from pathlib import Path

import pymupdf

PAGES = [
    ("The Harbor Lighthouse Field Guide",
     "This guide describes the Harbor Lighthouse on Gull Island and the keepers who ran it. "
     "It was written by the island historical society for visitors and volunteers. "
     "The chapters cover the tower, the lamp, the keepers and the visiting hours."),
    ("The Tower",
     "The tower was built in 1887 from grey granite quarried on the mainland. "
     "It is 38 meters tall and has 212 steps from the door to the lantern room. "
     "The walls are two meters thick at the base and one meter thick at the top."),
    ("The Lamp",
     "The original lamp burned whale oil and was replaced by a kerosene lamp in 1902. "
     "The lighthouse keeper was Margaret Olsen, who kept the light burning for 31 years. "
     "Her logbooks record every ship that passed the island during storms."),
    ("Visiting",
     "The lighthouse is open to visitors from May to September. "
     "Tickets cost 7 euros for adults and are free for children under twelve. "
     "The ferry to Gull Island leaves the harbor every morning at nine o'clock."),
]


def build(path: Path) -> None:
    document = pymupdf.open()
    document.set_metadata({"title": "The Harbor Lighthouse Field Guide"})
    for title, body in PAGES:
        page = document.new_page(width=595, height=842)
        page.insert_text((72, 90), title, fontsize=20)
        page.insert_textbox(pymupdf.Rect(72, 120, 523, 760), body, fontsize=12)
    document.save(path)


if __name__ == "__main__":
    build(Path(__file__).with_name("sample.pdf"))
