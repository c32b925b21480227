//! Glyph names pdf-extract cannot map. A simple font's /Differences names its glyphs, and
//! pdf-extract maps only names listed in the Adobe Glyph List as they are: small caps
//! (`e.sc`), old-style figures (`one.oldstyle`), ligatures (`f_i.alt`, `Q_u.sc`) and `uniXXXX`
//! names come out as whatever the code means in PDFDocEncoding (or nothing) unless a
//! ToUnicode CMap covers them. Before extraction we therefore rewrite such names by the
//! Adobe Glyph List convention (the part before the first '.', split on '_', each part a
//! glyph-list name or a `uniXXXX` / `uXXXX[XX]` code): a name whose meaning is a glyph-list
//! name is renamed to it; any other meaning we can spell is added to a ToUnicode CMap made for
//! fonts that have none.

use std::collections::{BTreeMap, BTreeSet};

use lopdf::{Dictionary, Document, Object, ObjectId, Stream};

/// What a glyph name should become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mapped {
    /// A name pdf-extract knows.
    Name(String),
    /// Text that needs a ToUnicode entry.
    Text(String),
}

/// Ligature names of the glyph list that `f_f_i`-style names stand for.
const LIGATURES: &[&str] = &["ff", "fi", "fl", "ffi", "ffl"];

/// Dotted or joined names that pdf-extract's own glyph table already maps: left as they are,
/// so `hyphen.alt` keeps its U+2010 rather than becoming a plain hyphen.
const KNOWN: &[&str] = &["f_f", "f_f_i", "f_f_l", "f_i", "f_l", "hyphen.alt"];

/// The Unicode text of a `uniXXXX[XXXX...]` or `uXXXX[XX]` name, if it is one.
fn code_name(name: &str) -> Option<String> {
    let hex_chars = |hex: &str| -> Option<char> {
        let v = u32::from_str_radix(hex, 16).ok()?;
        // Surrogates are not characters (`from_u32` refuses them); control characters are
        // glyph indices in disguise (matplotlib's Type 3 fonts name glyphs `uni00000024`,
        // the font's glyph 0x24, meaning the code's own letter).
        char::from_u32(v).filter(|c| !c.is_control())
    };
    // The convention spells codes in upper-case hex only.
    let upper_hex = |hex: &str| {
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    };
    if let Some(hex) = name.strip_prefix("uni")
        && !hex.is_empty()
        && hex.len() % 4 == 0
        && upper_hex(hex)
    {
        return (0..hex.len())
            .step_by(4)
            .map(|i| hex_chars(&hex[i..i + 4]))
            .collect();
    }
    if let Some(hex) = name.strip_prefix('u')
        && (4..=6).contains(&hex.len())
        && upper_hex(hex)
    {
        return hex_chars(hex).map(String::from);
    }
    None
}

/// How to rewrite the glyph name `name`, or `None` to leave it (a plain glyph-list name, or
/// one we cannot read).
pub(crate) fn map_name(name: &str) -> Option<Mapped> {
    if KNOWN.contains(&name) {
        return None;
    }
    let base = name.split('.').next().unwrap_or_default();
    if base.is_empty() {
        return None;
    }
    let parts: Vec<&str> = base.split('_').collect();
    if parts.len() == 1 {
        if let Some(text) = code_name(base) {
            return Some(Mapped::Text(text));
        }
        return (base != name).then(|| Mapped::Name(base.to_string()));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let joined: String = parts.concat();
    if LIGATURES.contains(&joined.as_str()) && parts.iter().all(|p| p.len() == 1) {
        return Some(Mapped::Name(joined));
    }
    // Each part must spell itself: one letter or digit, or a code name.
    let text: Option<String> = parts
        .iter()
        .map(|p| {
            let mut chars = p.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphanumeric() => Some(c.to_string()),
                _ => code_name(p),
            }
        })
        .collect();
    text.map(Mapped::Text)
}

/// Rewrites the /Differences of every simple font in `doc` (see the module doc). Returns how
/// many glyph names were rewritten.
pub(crate) fn normalise(doc: &mut Document) -> usize {
    // Fonts with a /Differences array: where their encoding dictionary lives.
    let mut fonts: Vec<(ObjectId, Option<ObjectId>, bool)> = Vec::new();
    for (&id, object) in &doc.objects {
        let Object::Dictionary(dict) = object else {
            continue;
        };
        if !dict
            .get(b"Type")
            .is_ok_and(|t| t.as_name().ok() == Some(b"Font"))
        {
            continue;
        }
        if dict
            .get(b"Subtype")
            .is_ok_and(|t| t.as_name().ok() == Some(b"Type0"))
        {
            continue;
        }
        let has_to_unicode = dict.has(b"ToUnicode");
        match dict.get(b"Encoding") {
            Ok(Object::Reference(enc)) => fonts.push((id, Some(*enc), has_to_unicode)),
            Ok(Object::Dictionary(_)) => fonts.push((id, None, has_to_unicode)),
            _ => {}
        }
    }
    let mut renamed = 0;
    let mut done: BTreeSet<ObjectId> = BTreeSet::new();
    for (font_id, encoding_id, has_to_unicode) in fonts {
        let encoding: Option<&mut Dictionary> = match encoding_id {
            Some(enc) => doc.get_object_mut(enc).and_then(Object::as_dict_mut).ok(),
            None => doc
                .get_object_mut(font_id)
                .and_then(Object::as_dict_mut)
                .and_then(|f| f.get_mut(b"Encoding"))
                .and_then(Object::as_dict_mut)
                .ok(),
        };
        let Some(encoding) = encoding else { continue };
        let Ok(Object::Array(differences)) = encoding.get_mut(b"Differences") else {
            continue;
        };
        // A shared encoding is renamed once; its texts still go to each font's CMap.
        let first_visit = encoding_id.is_none_or(|id| done.insert(id));
        let mut texts: BTreeMap<u8, String> = BTreeMap::new();
        let mut code: i64 = 0;
        for entry in differences.iter_mut() {
            match entry {
                Object::Integer(i) => code = *i,
                Object::Name(raw) => {
                    let name = String::from_utf8_lossy(raw).into_owned();
                    match map_name(&name) {
                        Some(Mapped::Name(new)) if first_visit => {
                            *raw = new.into_bytes();
                            renamed += 1;
                        }
                        Some(Mapped::Text(text)) => {
                            if let Ok(code) = u8::try_from(code) {
                                texts.insert(code, text);
                            }
                        }
                        _ => {}
                    }
                    code += 1;
                }
                _ => {}
            }
        }
        // A font's own ToUnicode CMap wins: LaTeX fonts with such names usually have one.
        if texts.is_empty() || has_to_unicode {
            continue;
        }
        renamed += texts.len();
        let cmap = doc.add_object(Stream::new(Dictionary::new(), to_unicode_cmap(&texts)));
        if let Ok(font) = doc.get_object_mut(font_id).and_then(Object::as_dict_mut) {
            font.set("ToUnicode", cmap);
        }
    }
    renamed
}

/// A ToUnicode CMap mapping one-byte codes to `texts`.
fn to_unicode_cmap(texts: &BTreeMap<u8, String>) -> Vec<u8> {
    let mut out = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CMapName /PdxGlyphNames def\n/CMapType 2 def\n\
         1 begincodespacerange\n<00> <FF>\nendcodespacerange\n",
    );
    // At most 100 entries per block, as the CMap format requires.
    let entries: Vec<(&u8, &String)> = texts.iter().collect();
    for block in entries.chunks(100) {
        out.push_str(&format!("{} beginbfchar\n", block.len()));
        for (code, text) in block {
            let hex: String = text.encode_utf16().map(|u| format!("{u:04X}")).collect();
            out.push_str(&format!("<{code:02X}> <{hex}>\n"));
        }
        out.push_str("endbfchar\n");
    }
    out.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::dictionary;

    #[test]
    fn glyph_names_by_the_glyph_list_convention() {
        let name = |s: &str| Some(Mapped::Name(s.to_string()));
        let text = |s: &str| Some(Mapped::Text(s.to_string()));
        let cases = [
            ("e", None),
            ("eacute", None),
            ("e.sc", name("e")),
            ("one.oldstyle", name("one")),
            ("a.sups", name("a")),
            ("Q_u.sc", text("Qu")),
            ("f_f_i", None),
            ("hyphen.alt", None),
            ("f_f_i.alt", name("ffi")),
            ("f_i.alt", name("fi")),
            ("T_h", text("Th")),
            ("uni00E9", text("é")),
            ("uni00660069", text("fi")),
            ("u1D400", text("\u{1D400}")),
            ("uni00e9", None),
            ("uniD800", None),
            ("uni00000024", None),
            (".notdef", None),
            ("germandbls_x", None),
            ("a__b", None),
        ];
        for (input, want) in cases {
            assert_eq!(map_name(input), want, "{input}");
        }
    }

    /// A font whose /Differences uses such names, codes 1-4 (which mean nothing useful in
    /// PDFDocEncoding): after `normalise` each shows as its text.
    #[test]
    fn unlisted_glyph_names_are_read() {
        let mut doc = Document::with_version("1.5");
        let encoding = doc.add_object(dictionary! {
            "Type" => "Encoding",
            "Differences" => vec![
                1.into(),
                Object::Name(b"A.sc".to_vec()),
                Object::Name(b"f_i.alt".to_vec()),
                Object::Name(b"uni00E9".to_vec()),
                Object::Name(b"Q_u.sc".to_vec()),
            ],
        });
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
            "Encoding" => encoding,
        });
        super::super::testpdf::single_page(
            &mut doc,
            b"BT /F1 10 Tf 72 700 Td (\x01\x02\x03\x04) Tj ET".to_vec(),
            dictionary! { "Font" => dictionary! { "F1" => font } },
        );

        let text = |doc: &Document| -> String {
            let raw = super::super::glyphs::capture_doc(doc, "names.pdf", 5);
            raw.pages
                .first()
                .map(|p| p.glyphs.iter().map(|g| g.text.as_str()).collect())
                .unwrap_or_default()
        };
        // Without the rewrite pdf-extract reads the codes in PDFDocEncoding.
        assert_ne!(text(&doc), "A\u{FB01}éQu");
        assert_eq!(normalise(&mut doc), 4);
        assert_eq!(text(&doc), "A\u{FB01}éQu");
    }
}
