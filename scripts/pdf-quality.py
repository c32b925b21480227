#!/usr/bin/env python3
"""Scores `paperdigest extract --json` against poppler's `pdftotext` (reading-order mode).

For each PDF it reports body-word recall and precision (bag of words), word 8-gram order
agreement, the abstract (`abstr`: share of our abstract's 8-grams found in pdftotext's body,
0 when we found none, so >= 0.9 means found and contiguous), whether the reference list
leaked into the body (`refleak`: share of the reference list's 8-grams found in our body;
`refs`: entries in our JSON `references`), U+FFFD and ligature-glyph counts in our output,
and the pages/s of both tools timed in the same run (process wall time, start-up included).
Exit status 0 only when every file meets every threshold below.

Body, defined the same way for both sides: from the Abstract heading (or where our abstract
starts, when pdftotext prints that heading later) up to the References heading; lines that are only a page number are dropped; on the pdftotext side, lines repeated
at the top or bottom of many pages (running headers and footers) are dropped too. On our side
the body is the abstract plus every section not marked as appendix, headings included.

pdftotext prints blocks in its own flow order, which can put a right-column "References"
heading before the end of the left column's text on the same page. The cut is therefore made
by position: lines pdftotext prints after the heading, on its page, but found (with
`pdftotext -bbox-layout`) in an earlier column or above the heading in its column, are put
back before it; the row says how many. `--linear-refs` cuts in printed order instead.

Recall counts pdftotext's prose lines only (six or more words, mostly alphabetic), so dropping
table cells and figure labels is not penalised; `rec_all` is recall over every body word, for
reference. Precision is against everything pdftotext printed in the body.

Order (`order8`): the share of our word 8-grams found anywhere in pdftotext's body, counting
8-grams inside one of our paragraphs and made of words (not formula symbols) only, so heading
and equation boundaries, where the two tools legitimately differ, do not count.

Words: NFKC (folds ligatures the same way on both sides), lower-case, every character that is
not a letter or digit separates words. A hyphen at a line end in pdftotext's text is joined:
kept as a hyphen (so two words) when the hyphenated compound occurs elsewhere in the same
text, dropped otherwise ("lan-/guage" -> "language"). pdftotext also joins such line ends
itself; a word it printed that is such a compound without its hyphen is read hyphenated.
Small caps that pdftotext splits after the first capital ("M AUVE") are joined again.

Usage: scripts/pdf-quality.py [--bin PATH] [--repeat N] [--linear-refs] [--json] [PDF ...]
  PATH defaults to $PAPERDIGEST_BIN or target/release/paperdigest; PDFs default to
  /work/shared/papers/*.pdf and examples/*.pdf. Standard library only.
"""

import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from html import unescape

LIGATURES = set(chr(c) for c in range(0xFB00, 0xFB07))
PAGE_NUMBER = re.compile(r"^\s*(page\s+)?[-\u2013]?\s*\d{1,4}\s*[-\u2013]?\s*(of\s+\d+)?\s*$", re.I)
REFS_HEADING = re.compile(r"^(\d+\.?|[A-Z]\.)?(references|bibliography|literaturecited)$", re.I)
ABSTRACT_HEADING = re.compile(r"^\s*(a\s?b\s?s\s?t\s?r\s?a\s?c\s?t)\s*([.:\u2014-]|$)", re.I)
SMALL_CAPS = re.compile(r"\b([B-HJ-Z]) ([A-Z]{2,})\b")
N = 8

# Thresholds from the issue.
MIN_RECALL = 0.98
MIN_PRECISION = 0.98
MIN_ORDER = 0.95
MIN_ABSTRACT = 0.90
MAX_REF_LEAK = 0.02


def words(text):
    out = []
    for w in re.split(r"[^\w]+|_", unicodedata.normalize("NFKC", text).lower()):
        if w:
            out.append(w)
    return out


def _resolve(lines, attested):
    """Joins "lan-" + "guage" across lines; keeps the hyphen where the compound is attested."""
    res = []
    pending = None  # (prefix text before word, word fragment)
    for line in lines:
        if pending is not None:
            before, frag = pending
            pending = None
            m = re.match(r"\s*(\w+)(.*)$", line, re.S)
            if m:
                rest_word, tail = m.group(1), m.group(2)
                compound = f"{frag}-{rest_word}".lower()
                joined = f"{frag}-{rest_word}" if compound in attested else frag + rest_word
                line = before + joined + tail
            else:
                line = before + frag + "-" + line
        m = re.search(r"(\w+)-\s*$", line)
        if m and not re.search(r"--\s*$", line):
            pending = (line[: m.start()], m.group(1))
            continue
        res.append(line)
    if pending is not None:
        res.append(pending[0] + pending[1] + "-")
    return res


def strip_repeated_margins(pages):
    """Drops lines seen at the top or bottom (first/last 3 lines) of many pages."""
    def key(line):
        return re.sub(r"\d+", "#", line.strip().lower())

    counts = collections.Counter()
    for page in pages:
        lines = [l for l in page if l.strip()]
        margin = set(key(l) for l in lines[:3] + lines[-3:])
        counts.update(margin)
    need = max(3, len(pages) // 3)
    repeated = {k for k, c in counts.items() if c >= need and k.strip("# ")}
    out = []
    for page in pages:
        lines = [l for l in page if l.strip()]
        edge = set(id(l) for l in lines[:3] + lines[-3:])
        out.append([l for l in lines if not (id(l) in edge and key(l) in repeated)])
    return out


def column_of(x_min, page_width):
    return 0 if x_min < page_width / 2 else 1


def blocks_before_heading(bbox_page):
    """Word sequences of the lines that pdftotext prints after the References heading of this
    page but that lie before it in reading order: in an earlier column, or in its column and
    above it. `bbox_page` is one page of `pdftotext -bbox-layout`: (width, blocks in pdftotext's
    order, each (x_min, y_min, [line words])). Empty when the page has no such heading."""
    width, blocks = bbox_page
    heading = None
    for i, (x, y, lines) in enumerate(blocks):
        if any(REFS_HEADING.match("".join(ws)) for ws in lines):
            heading = i
            break
    if heading is None:
        return []
    hx, hy, _ = blocks[heading]
    hcol = column_of(hx, width)
    moved = []
    for x, y, lines in blocks[heading + 1 :]:
        col = column_of(x, width)
        if col < hcol or (col == hcol and y < hy):
            moved.extend(words(" ".join(ws)) for ws in lines)
    return [m for m in moved if m]


def read_bbox(pdf):
    """`pdftotext -bbox-layout` -> per page (width, [(x_min, y_min, [line words])])."""
    out = subprocess.run(["pdftotext", "-bbox-layout", "-enc", "UTF-8", pdf, "-"], capture_output=True)
    if out.returncode != 0:
        raise RuntimeError(f"pdftotext -bbox-layout {pdf} failed ({out.returncode})")
    html = out.stdout.decode("utf-8", errors="replace")
    pages = []
    for page in re.finditer(r'<page width="([\d.]+)"[^>]*>(.*?)</page>', html, re.S):
        blocks = []
        for b in re.finditer(r'<block xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>(.*?)</block>', page.group(2), re.S):
            lines = [
                [unescape(w) for w in re.findall(r">([^<]*)</word>", line)]
                for line in re.findall(r"<line[^>]*>(.*?)</line>", b.group(3), re.S)
            ]
            blocks.append((float(b.group(1)), float(b.group(2)), lines))
        pages.append((float(page.group(1)), blocks))
    return pages


def reference_body(text, anchor=None, bbox=None):
    """pdftotext text -> (body words, prose-line body words, reference-list words, had
    references heading, lines moved before the heading).

    With `bbox` (see `read_bbox`), lines that pdftotext prints after the References heading
    but that come before it on the page (see `blocks_before_heading`) are put back before it:
    pdftotext's flow order can emit a right-column heading before the end of the left column."""
    pages = [p.split("\n") for p in text.split("\f")]
    pages = strip_repeated_margins(pages)
    numbered = [(n, l) for n, page in enumerate(pages) for l in page if not PAGE_NUMBER.match(l)]
    lines = [l for _, l in numbered]
    # The earlier of the Abstract heading on page 1 and the line where our abstract starts
    # (some templates draw the heading so that pdftotext puts it after the abstract).
    first_page = len([l for l in pages[0] if not PAGE_NUMBER.match(l)]) if pages else 0
    starts = [i for i, l in enumerate(lines[:first_page]) if ABSTRACT_HEADING.match(l)][:1]
    lead = words(anchor or "")[:6]
    if lead:
        starts += [i for i in range(len(lines)) if words(" ".join(lines[i : i + 3]))[: len(lead)] == lead][:1]
    start = min(starts, default=0)
    end = len(lines)
    for i in range(start, len(lines)):
        if REFS_HEADING.match(re.sub(r"\s+", "", lines[i])):  # small caps: "R EFERENCES"
            end = i
            break
    moved = 0
    if bbox is not None and end < len(lines) and numbered[end][0] < len(bbox):
        page = numbered[end][0]
        before = blocks_before_heading(bbox[page])
        back, rest = [], []
        for n, l in numbered[end + 1 :]:
            ws = words(l)
            if n == page and ws and ws in before:
                before.remove(ws)
                back.append(l)
            else:
                rest.append(l)
        moved = len(back)
        lines = lines[:end] + back + [lines[end]] + rest
        end += moved
    attested = set(m.group(0).lower() for m in re.finditer(r"\w+-\w+", text))
    body = _resolve(lines[start:end], attested)
    # pdftotext itself joins "low-" + "resource" at a line end into "lowresource"; where the
    # document writes the compound with its hyphen elsewhere, read it that way.
    # Letters only, lower case after the hyphen ("Deep-SeekMoE" is a line end pdftotext kept).
    # Only where the hyphenated form is the usual one: "paper-digest" once in a URL does not
    # make the name "paperdigest" a compound.
    compounds = collections.Counter(
        m.group(0).lower() for m in re.finditer(r"\b[^\W\d_]{2,}-[^\W\d_A-Z]{2,}\b", text)
    )
    joined = collections.Counter(w.lower() for w in re.findall(r"\w+", text))
    split = {c.replace("-", ""): c for c, n in compounds.items() if joined[c.replace("-", "")] <= n}
    body = [re.sub(r"\w+", lambda m: split.get(m.group(0).lower(), m.group(0)), l) for l in body]
    # pdftotext splits small caps after their first, full-size capital: "M AUVE" is "MAUVE".
    body = [SMALL_CAPS.sub(r"\1\2", l) for l in body]
    refs = _resolve(lines[end:], set())
    prose = [l for l in body if is_prose(l)]
    return words("\n".join(body)), words("\n".join(prose)), words("\n".join(refs)), end < len(lines), moved


def is_prose(line):
    """A line of running text, not a table row, axis label or formula: six or more words, at
    least 70% of them alphabetic."""
    ws = words(line)
    alpha = sum(1 for w in ws if w.isalpha() and (len(w) > 1 or w in ("a", "i")))
    return len(ws) >= 6 and alpha >= 0.7 * len(ws)


def our_body(doc):
    parts = []
    abstract = doc.get("abstract", doc.get("abstract_text"))
    if abstract:
        parts.append("Abstract")
        parts.append(abstract)
    for s in doc.get("sections", []):
        if s.get("appendix"):
            continue
        parts.append(s.get("heading", ""))
        parts.append(s.get("text", ""))
    lines = "\n".join(parts).split("\n")
    lines = [l for l in lines if not PAGE_NUMBER.match(l)]
    paragraphs = [words(p) for p in re.split(r"\n\s*\n", "\n".join(parts))]
    return words("\n".join(lines)), words(abstract or ""), paragraphs


def prose_gram(gram):
    """An n-gram of words, not of formula symbols: all alphabetic, few single letters."""
    return all(w.isalpha() for w in gram) and sum(1 for w in gram if len(w) == 1 and w not in ("a", "i")) <= 1


def all_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_strings(v)


def ngrams(ws, n=N):
    return [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]


def timed(cmd, repeat):
    best = None
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True)
        dt = time.perf_counter() - t
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-400:]}")
        best = dt if best is None else min(best, dt)
        out = p.stdout
    return out.decode("utf-8", errors="replace"), best


def score(pdf, binary, repeat, linear_refs=False):
    ref_text, t_ref = timed(["pdftotext", "-enc", "UTF-8", pdf, "-"], repeat)
    bbox = None if linear_refs else read_bbox(pdf)
    ours_json, t_ours = timed([binary, "extract", "--json", pdf], repeat)
    doc = json.loads(ours_json)
    strings = list(all_strings(doc.get("title"))) + list(all_strings(doc.get("abstract", doc.get("abstract_text")))) + list(all_strings(doc.get("sections")))
    fffd = sum(s.count("\ufffd") for s in strings)
    ligs = sum(sum(1 for c in s if c in LIGATURES) for s in strings)

    ref_words, prose_words, ref_list_words, had_refs, moved = reference_body(
        ref_text, doc.get("abstract", doc.get("abstract_text")), bbox
    )
    mine, abstract, paragraphs = our_body(doc)
    a, b = collections.Counter(ref_words), collections.Counter(mine)
    p = collections.Counter(prose_words)
    recall = sum((p & b).values()) / max(1, sum(p.values()))
    recall_all = sum((a & b).values()) / max(1, sum(a.values()))
    precision = sum((a & b).values()) / max(1, sum(b.values()))

    ref8 = set(ngrams(ref_words))
    mine8 = ngrams(mine)
    prose8 = [g for para in paragraphs for g in ngrams(para) if prose_gram(g)]
    order = sum(1 for g in prose8 if g in ref8) / max(1, len(prose8))
    abs8 = ngrams(abstract)
    abstract_agree = sum(1 for g in abs8 if g in ref8) / max(1, len(abs8)) if abstract else 0.0
    reflist8 = set(ngrams(ref_list_words)) - ref8
    leak = len(reflist8 & set(mine8)) / max(1, len(reflist8)) if had_refs else 0.0
    return {
        "file": os.path.basename(pdf),
        "pages": int(doc.get("pages", 0)),
        "recall": recall,
        "recall_all": recall_all,
        "precision": precision,
        "order": order,
        "abstract": abstract_agree,
        "ref_leak": leak,
        "fffd": fffd,
        "refs": len(doc.get("references") or []),
        "ligatures": ligs,
        "t_ref": t_ref,
        "t_ours": t_ours,
        "ref_words": sum(p.values()),
        "moved": moved,
        "our_words": sum(b.values()),
    }


def passes(r):
    return (
        r["recall"] >= MIN_RECALL
        and r["precision"] >= MIN_PRECISION
        and r["order"] >= MIN_ORDER
        and r["abstract"] >= MIN_ABSTRACT
        and r["ref_leak"] <= MAX_REF_LEAK
        and r["fffd"] == 0
        and r["ligatures"] == 0
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("PAPERDIGEST_BIN", os.path.join(root, "target/release/paperdigest")))
    ap.add_argument("--repeat", type=int, default=1, help="time each tool N times, keep the fastest")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON too")
    ap.add_argument(
        "--linear-refs",
        action="store_true",
        help="cut pdftotext's body at the References heading in its printed order, without putting back lines it misplaced",
    )
    ap.add_argument("pdfs", nargs="*")
    args = ap.parse_args()
    pdfs = args.pdfs or sorted(glob.glob("/work/shared/papers/*.pdf")) + sorted(glob.glob(os.path.join(root, "examples/*.pdf")))
    if not pdfs:
        sys.exit("no PDFs given and none found")

    rows = []
    head = f"{'file':<42} {'pg':>3} {'recall':>7} {'rec_all':>7} {'prec':>7} {'order8':>7} {'abstr':>6} {'refleak':>7} {'refs':>4} {'fffd':>4} {'lig':>3} {'ok':>3}"
    print(head)
    print("-" * len(head))
    for pdf in pdfs:
        try:
            r = score(pdf, args.bin, args.repeat, args.linear_refs)
        except (RuntimeError, ValueError, OSError) as e:
            print(f"{os.path.basename(pdf):<42} ERROR {e}")
            rows.append({"file": os.path.basename(pdf), "error": str(e)})
            continue
        rows.append(r)
        print(
            f"{r['file'][:42]:<42} {r['pages']:>3} {r['recall']:>7.4f} {r['recall_all']:>7.4f} {r['precision']:>7.4f} {r['order']:>7.4f} "
            f"{r['abstract']:>6.3f} {r['ref_leak']:>7.4f} {r['refs']:>4} {r['fffd']:>4} {r['ligatures']:>3} {'yes' if passes(r) else 'NO':>3}"
            + (f"  ({r['moved']} pdftotext lines put back before References)" if r["moved"] else "")
        )
    ok = [r for r in rows if "error" not in r]
    if ok:
        tw = lambda k: sum(r[k] * r["ref_words"] for r in ok) / max(1, sum(r["ref_words"] for r in ok))
        print("-" * len(head))
        print(
            f"{'TOTAL (weighted by words)':<42} {sum(r['pages'] for r in ok):>3} {tw('recall'):>7.4f} {tw('recall_all'):>7.4f} {tw('precision'):>7.4f} "
            f"{tw('order'):>7.4f} {min(r['abstract'] for r in ok):>6.3f} {max(r['ref_leak'] for r in ok):>7.4f} {sum(r['refs'] for r in ok):>4} "
            f"{sum(r['fffd'] for r in ok):>4} {sum(r['ligatures'] for r in ok):>3} {sum(passes(r) for r in ok):>2}/{len(rows)}"
        )
        pages = sum(r["pages"] for r in ok)
        t_ref = sum(r["t_ref"] for r in ok)
        t_ours = sum(r["t_ours"] for r in ok)
        print(
            f"\nspeed: pdftotext {pages / t_ref:.1f} pages/s ({t_ref:.2f} s), paperdigest {pages / t_ours:.1f} pages/s "
            f"({t_ours:.2f} s) -> {t_ref / t_ours:.2f}x poppler (process wall time incl. start-up, best of {args.repeat})"
        )
    if args.json:
        print(json.dumps(rows, indent=1))
    sys.exit(0 if ok and all(passes(r) for r in ok) and len(ok) == len(rows) else 1)


if __name__ == "__main__":
    main()
