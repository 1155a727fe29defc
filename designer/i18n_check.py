"""Is every user-facing string translated? Extract what ``make i18n`` extracts and compare it with the zh_CN
catalogue: a string with no Chinese, or only a fuzzy one, is missing. The test suite runs this
(``tests/designer/test_i18n.py``); ``make i18n`` prints it after updating the catalogue, and
``python -m designer.i18n_check`` exits 1 while anything is missing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "babel.cfg"
#: the keywords ``make i18n`` passes to ``pybabel extract`` on top of Babel's defaults
KEYWORDS = {"NC_": ((1, "c"), 2), "Msg": None, "N_": None}


@dataclass(frozen=True)
class Missing:
    msgid: str
    context: str | None
    where: str
    fuzzy: bool

    def __str__(self) -> str:
        ctx = f" [{self.context}]" if self.context else ""
        state = "fuzzy" if self.fuzzy else "untranslated"
        return f"{self.where}: {state}{ctx}: {self.msgid!r}"


def extract() -> Catalog:
    """Every marked string of the tree (``babel.cfg``), as ``pybabel extract`` would find it."""
    from babel.messages.extract import DEFAULT_KEYWORDS

    with CONFIG.open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, filename=str(CONFIG))
    catalog = Catalog(project="Tideflow")
    keywords = {**DEFAULT_KEYWORDS, **KEYWORDS}
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords, strip_comment_tags=True):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def catalogue(path: Path | None = None) -> Catalog:
    from designer.i18n import po_path

    with (path or po_path("zh-CN")).open("rb") as handle:
        return read_po(handle, locale="zh_CN")


def missing(extracted: Catalog | None = None, translated: Catalog | None = None) -> list[Missing]:
    """The extracted strings the catalogue does not translate (absent, empty or fuzzy)."""
    extracted = extracted if extracted is not None else extract()
    translated = translated if translated is not None else catalogue()
    out: list[Missing] = []
    for message in extracted:
        if not message.id:
            continue
        found = translated.get(message.id, message.context)
        strings = found.string if found is not None else ""
        empty = not strings or (isinstance(strings, tuple) and not all(strings))
        if found is None or empty or found.fuzzy:
            where = f"{message.locations[0][0]}:{message.locations[0][1]}" if message.locations else "?"
            key = message.id[0] if isinstance(message.id, tuple | list) else message.id
            out.append(Missing(str(key), message.context, where, bool(found is not None and found.fuzzy)))
    return out


def main() -> int:
    gaps = missing()
    for gap in gaps:
        print(gap)
    if gaps:
        print(f"{len(gaps)} strings need a Chinese translation in designer/locale/zh_CN/LC_MESSAGES/messages.po")
        return 1
    print("every string has its Chinese translation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
