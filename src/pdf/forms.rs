//! The text operators of a page, forms inlined. pdf-extract draws a form XObject (how LaTeX
//! embeds PDF figures, and how some producers wrap whole pages) with a fresh identity
//! transform, ignoring both the page's current transform and the form's /Matrix, so figure
//! labels land at arbitrary places and sizes on the page; it also runs image XObjects through
//! the content parser. And it parses every operator of a page with lopdf's slow parser,
//! though half of a paper's content bytes are vector graphics that place no text.
//!
//! Before extraction we therefore rewrite each page's content with the [`super::content`]
//! lexer, keeping only the operators pdf-extract uses to place text (text objects, text
//! state, text showing, `cm`, `q`/`Q`), copied byte for byte. Every form is replaced by its
//! own kept operators wrapped in `q <Matrix> cm ... Q`, with the form's font names renamed
//! into the page's font dictionary; images, inline images, paths, colours, graphics-state
//! dictionaries and marked content are dropped (pdf-extract reads nothing from them that
//! reaches a glyph's text or position).
//!
//! Callers run this under `guarded` and keep the original page on any failure.

use std::collections::BTreeMap;

use lopdf::{Dictionary, Document, Object, ObjectId, Stream};

use super::content::{self, Kind, Op};

/// Nesting depth at which forms are no longer expanded (guards against reference cycles).
const MAX_DEPTH: usize = 8;
/// Operator budget per page after expansion (a form reused thousands of times could explode).
const MAX_OPS: usize = 2_000_000;

/// The operators that pdf-extract reads to place text, kept as they are.
const TEXT_OPERATORS: &[&[u8]] = &[
    b"BT", b"ET", b"cm", b"q", b"Q", b"Tc", b"Tw", b"Tz", b"TL", b"Ts", b"Tm", b"Td", b"TD", b"T*",
    b"TJ", b"Tj",
];

/// Rewrites the page `page_id` in place to its text operators, forms inlined.
#[cfg(test)]
pub(crate) fn inline_page(doc: &mut Document, page_id: ObjectId) -> Result<(), String> {
    let page = doc
        .get_dictionary(page_id)
        .map_err(|e| format!("page dictionary: {e}"))?;
    let resources = page_resources(doc, page);
    let bytes = doc
        .get_page_content(page_id)
        .map_err(|e| format!("page content: {e}"))?;
    let (content, resources) = text_content(doc, &resources, &bytes)?;
    set_page_content(doc, page_id, content, resources)
}

/// Points the page `page_id` at new content and resources.
pub(crate) fn set_page_content(
    doc: &mut Document,
    page_id: ObjectId,
    content: Vec<u8>,
    resources: Dictionary,
) -> Result<(), String> {
    let content_id = doc.add_object(Stream::new(Dictionary::new(), content));
    let page = doc
        .get_object_mut(page_id)
        .and_then(Object::as_dict_mut)
        .map_err(|e| format!("page dictionary: {e}"))?;
    page.set("Contents", content_id);
    page.set("Resources", Object::Dictionary(resources));
    Ok(())
}

/// The page's resources as pdf-extract finds them (inherited down the page tree), or none.
pub(crate) fn page_resources(doc: &Document, page: &Dictionary) -> Dictionary {
    inherited_resources(doc, page).cloned().unwrap_or_default()
}

/// The text operators of a page's content `bytes` (resources `resources`), forms inlined,
/// and the resources they need: a /Font dictionary with the page's fonts and those of its
/// forms. Reads the document only, so pages can be prepared in parallel.
pub(crate) fn text_content(
    doc: &Document,
    resources: &Dictionary,
    bytes: &[u8],
) -> Result<(Vec<u8>, Dictionary), String> {
    let mut inliner = Inliner {
        doc,
        fonts: BTreeMap::new(),
        counter: 0,
        ops: 0,
    };
    inliner.register(resources, None);
    let mut out = Vec::with_capacity(bytes.len() / 2);
    inliner.expand(bytes, resources, None, 0, &mut out)?;
    let mut fonts = Dictionary::new();
    for (name, font) in inliner.fonts {
        fonts.set(name, font);
    }
    let mut res = Dictionary::new();
    res.set("Font", Object::Dictionary(fonts));
    Ok((out, res))
}

/// The page's /Resources, looked up the page tree like pdf-extract does.
fn inherited_resources<'a>(doc: &'a Document, mut dict: &'a Dictionary) -> Option<&'a Dictionary> {
    for _ in 0..32 {
        if let Ok(res) = dict.get(b"Resources") {
            return deref(doc, res).as_dict().ok();
        }
        let parent = dict.get(b"Parent").ok()?.as_reference().ok()?;
        dict = doc.get_dictionary(parent).ok()?;
    }
    None
}

fn deref<'a>(doc: &'a Document, obj: &'a Object) -> &'a Object {
    doc.dereference(obj).map(|(_, o)| o).unwrap_or(obj)
}

struct Inliner<'a> {
    doc: &'a Document,
    /// Font name (renamed) -> font object.
    fonts: BTreeMap<Vec<u8>, Object>,
    counter: usize,
    ops: usize,
}

impl Inliner<'_> {
    /// Adds the fonts of `res` to the merged font dictionary, names prefixed.
    fn register(&mut self, res: &Dictionary, prefix: Option<&str>) {
        let Some(dict) = category_dict(self.doc, res, b"Font") else {
            return;
        };
        for (name, obj) in dict.iter() {
            self.fonts.insert(renamed(prefix, name), obj.clone());
        }
    }

    fn expand(
        &mut self,
        bytes: &[u8],
        res: &Dictionary,
        prefix: Option<&str>,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let mut failure = None;
        content::for_each_op(bytes, |op| {
            self.ops += 1;
            if self.ops > MAX_OPS {
                failure = Some("content too large after inlining forms".to_string());
                return false;
            }
            match op.operator {
                b"Do" => {
                    let doc = self.doc;
                    if let Some((id, stream, own_res)) = form_of(doc, res, bytes, op)
                        && depth < MAX_DEPTH
                        && let Err(why) =
                            self.inline_form(id, stream, own_res, res, prefix, depth, out)
                    {
                        failure = Some(why);
                        return false;
                    }
                    // Images and other XObjects hold no text.
                }
                b"Tf" => {
                    let renamed_font = prefix.and_then(|p| {
                        let first = op.operands.first().filter(|o| o.kind == Kind::Name)?;
                        let name = content::name(&bytes[first.span.clone()]);
                        category_dict(self.doc, res, b"Font")?.get(&name).ok()?;
                        Some((renamed(Some(p), &name), op.operands.get(1)?.span.clone()))
                    });
                    match renamed_font {
                        Some((name, size)) => {
                            content::write_name(out, &name);
                            out.push(b' ');
                            out.extend_from_slice(&bytes[size]);
                            out.extend_from_slice(b" Tf\n");
                        }
                        None => copy(out, bytes, op),
                    }
                }
                other if TEXT_OPERATORS.contains(&other) => copy(out, bytes, op),
                _ => {}
            }
            true
        });
        failure.map_or(Ok(()), Err)
    }

    #[allow(clippy::too_many_arguments)]
    fn inline_form(
        &mut self,
        id: Option<ObjectId>,
        stream: &Stream,
        own_res: Option<&Dictionary>,
        parent_res: &Dictionary,
        parent_prefix: Option<&str>,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let decoded;
        let bytes: &[u8] = if stream.dict.get(b"Filter").is_ok() {
            match stream.decompressed_content() {
                Ok(d) => {
                    decoded = d;
                    &decoded
                }
                // An undecodable figure loses its labels, not the page.
                Err(_) => return Ok(()),
            }
        } else {
            &stream.content
        };
        out.extend_from_slice(b"q\n");
        if let Ok(m) = stream.dict.get(b"Matrix").and_then(Object::as_array)
            && m.len() == 6
        {
            let numbers: Option<Vec<String>> = m
                .iter()
                .map(|v| match v {
                    Object::Integer(i) => Some(i.to_string()),
                    Object::Real(r) if r.is_finite() => Some(r.to_string()),
                    _ => None,
                })
                .collect();
            if let Some(numbers) = numbers {
                out.extend_from_slice(numbers.join(" ").as_bytes());
                out.extend_from_slice(b" cm\n");
            }
        }
        match own_res {
            Some(own) => {
                // Named after the form's object, so every page that draws it gives its
                // fonts the same names (pages can then share one resource dictionary and
                // pdf-extract's font cache, see `glyphs`).
                let prefix = match id {
                    Some((n, g)) => format!("pdx{n}_{g}_"),
                    None => {
                        self.counter += 1;
                        format!("pdxd{}_", self.counter)
                    }
                };
                self.register(own, Some(&prefix));
                self.expand(bytes, own, Some(&prefix), depth + 1, out)?;
            }
            // Without its own resources a form uses its parent's names.
            None => self.expand(bytes, parent_res, parent_prefix, depth + 1, out)?,
        }
        out.extend_from_slice(b"Q\n");
        Ok(())
    }
}

/// Copies an operation as it is, on a line of its own.
fn copy(out: &mut Vec<u8>, bytes: &[u8], op: &Op<'_>) {
    out.extend_from_slice(&bytes[op.span.clone()]);
    out.push(b'\n');
}

fn category_dict<'a>(
    doc: &'a Document,
    res: &'a Dictionary,
    category: &[u8],
) -> Option<&'a Dictionary> {
    res.get(category)
        .ok()
        .and_then(|o| deref(doc, o).as_dict().ok())
}

/// The form XObject a `Do` draws (its object id when indirect), with its own resources if it
/// has any.
fn form_of<'a>(
    doc: &'a Document,
    res: &'a Dictionary,
    bytes: &[u8],
    op: &Op<'_>,
) -> Option<(Option<ObjectId>, &'a Stream, Option<&'a Dictionary>)> {
    let first = op.operands.first().filter(|o| o.kind == Kind::Name)?;
    let name = content::name(&bytes[first.span.clone()]);
    let xobjects = category_dict(doc, res, b"XObject")?;
    let entry = xobjects.get(&name).ok()?;
    let id = entry.as_reference().ok();
    let stream = deref(doc, entry).as_stream().ok()?;
    let subtype = stream.dict.get(b"Subtype").ok()?.as_name().ok()?;
    if subtype != b"Form" {
        return None;
    }
    let own = stream
        .dict
        .get(b"Resources")
        .ok()
        .and_then(|o| deref(doc, o).as_dict().ok());
    Some((id, stream, own))
}

fn renamed(prefix: Option<&str>, name: &[u8]) -> Vec<u8> {
    match prefix {
        Some(p) => [p.as_bytes(), name].concat(),
        None => name.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::dictionary;

    /// A page that draws a form scaled by 0.5 and moved to (100, 200) through the page CTM:
    /// after inlining, the text must come out at the transformed place and size.
    #[test]
    fn inlined_form_text_gets_page_coordinates() {
        let mut doc = Document::with_version("1.5");
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let form_content = b"BT /F9 20 Tf 10 10 Td (Label) Tj ET".to_vec();
        let form = doc.add_object(Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Form",
                "BBox" => vec![0.into(), 0.into(), 100.into(), 100.into()],
                "Matrix" => vec![0.5.into(), 0.into(), 0.into(), 0.5.into(), 0.into(), 0.into()],
                "Resources" => dictionary! { "Font" => dictionary! { "F9" => font } },
            },
            form_content,
        ));
        let image = doc.add_object(Stream::new(
            dictionary! { "Type" => "XObject", "Subtype" => "Image", "Width" => 1, "Height" => 1 },
            b"BT (junk) Tj ET".to_vec(),
        ));
        let page_id = super::super::testpdf::single_page(
            &mut doc,
            b"q 1 0 0 1 100 200 cm /Fm1 Do Q /Im1 Do".to_vec(),
            dictionary! { "XObject" => dictionary! { "Fm1" => form, "Im1" => image } },
        );

        assert_eq!(inline_page(&mut doc, page_id), Ok(()));
        let raw = super::super::glyphs::capture_doc(&doc, "form.pdf", 5);
        let glyphs = &raw.pages[0].glyphs;
        let text: String = glyphs.iter().map(|g| g.text.as_str()).collect();
        assert_eq!(text, "Label");
        // Origin (10, 10) in form space -> (105, 205) on the page; size 20 * 0.5.
        assert!((glyphs[0].x - 105.0).abs() < 0.01, "{:?}", glyphs[0]);
        assert!(
            (glyphs[0].y - (792.0 - 205.0)).abs() < 0.01,
            "{:?}",
            glyphs[0]
        );
        assert!((glyphs[0].size - 10.0).abs() < 0.01, "{:?}", glyphs[0]);
    }
}
