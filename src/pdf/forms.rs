//! Form XObject inlining. pdf-extract draws a form XObject (how LaTeX embeds PDF figures, and
//! how some producers wrap whole pages) with a fresh identity transform, ignoring both the
//! page's current transform and the form's /Matrix, so figure labels land at arbitrary places
//! and sizes on the page. It also runs image XObjects through the content parser. Before
//! extraction we therefore rewrite each page's content: every form is replaced by its own
//! operators wrapped in `q <Matrix> cm ... Q`, with the form's resource names renamed into the
//! page's resource dictionary, and image `Do`s (no text) and inline images are dropped.
//!
//! Callers run this under `guarded` and keep the original page on any failure.

use std::collections::BTreeMap;

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, ObjectId, Stream};

/// Nesting depth at which forms are no longer expanded (guards against reference cycles).
const MAX_DEPTH: usize = 8;
/// Operator budget per page after expansion (a form reused thousands of times could explode).
const MAX_OPS: usize = 2_000_000;

/// Resource categories whose names appear as operands and must be renamed with the form.
const CATEGORIES: &[&[u8]] = &[
    b"Font",
    b"XObject",
    b"ExtGState",
    b"ColorSpace",
    b"Pattern",
    b"Shading",
    b"Properties",
];

/// Rewrites the page `page_id` in place when it draws form XObjects. Returns whether the page
/// was changed; `Err` leaves the document unchanged.
pub(crate) fn inline_page(doc: &mut Document, page_id: ObjectId) -> Result<bool, String> {
    let (new_content, merged) = {
        let doc_ref: &Document = doc;
        let page = doc_ref
            .get_dictionary(page_id)
            .map_err(|e| format!("page dictionary: {e}"))?;
        let resources = inherited_resources(doc_ref, page)
            .cloned()
            .unwrap_or_default();
        let bytes = doc_ref
            .get_page_content(page_id)
            .map_err(|e| format!("page content: {e}"))?;
        // Parsing the content is a good part of the extraction time; most text pages have
        // nothing to inline, which the resources and a byte scan already tell.
        if !may_draw_xobjects(doc_ref, &resources, &bytes) {
            return Ok(false);
        }
        let content = Content::decode(&bytes).map_err(|e| format!("page content: {e}"))?;
        if !draws_xobjects(&content.operations) {
            return Ok(false);
        }
        let mut inliner = Inliner {
            doc: doc_ref,
            merged: BTreeMap::new(),
            counter: 0,
            ops: 0,
        };
        inliner.register(&resources, None);
        let mut out = Vec::with_capacity(content.operations.len());
        inliner.expand(content.operations, &resources, None, 0, &mut out)?;
        let encoded = Content { operations: out }
            .encode()
            .map_err(|e| format!("encoding content: {e}"))?;
        let mut merged_res = resources.clone();
        for (category, dict) in inliner.merged {
            merged_res.set(category, Object::Dictionary(dict));
        }
        (encoded, merged_res)
    };
    let content_id = doc.add_object(Stream::new(Dictionary::new(), new_content));
    let page = doc
        .get_object_mut(page_id)
        .and_then(Object::as_dict_mut)
        .map_err(|e| format!("page dictionary: {e}"))?;
    page.set("Contents", content_id);
    page.set("Resources", Object::Dictionary(merged));
    Ok(true)
}

/// False only when the page cannot draw an XObject (no /XObject resources) and holds no
/// inline image (no `BI` token in its content bytes).
fn may_draw_xobjects(doc: &Document, resources: &Dictionary, content: &[u8]) -> bool {
    // An /XObject entry that is not a dictionary is left to the full check.
    let has_xobjects = resources
        .get(b"XObject")
        .is_ok_and(|o| deref(doc, o).as_dict().ok().is_none_or(|d| !d.is_empty()));
    let delimiter = |b: u8| b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b);
    let inline_image = content
        .windows(4)
        .any(|w| delimiter(w[0]) && w[1] == b'B' && w[2] == b'I' && delimiter(w[3]));
    has_xobjects || inline_image
}

fn draws_xobjects(ops: &[Operation]) -> bool {
    ops.iter()
        .any(|op| op.operator == "Do" || op.operator == "BI")
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
    /// category -> merged name -> object.
    merged: BTreeMap<Vec<u8>, Dictionary>,
    counter: usize,
    ops: usize,
}

impl Inliner<'_> {
    /// Adds every named resource of `res` to the merged dictionary, names prefixed.
    fn register(&mut self, res: &Dictionary, prefix: Option<&str>) {
        for &category in CATEGORIES {
            let Some(dict) = res
                .get(category)
                .ok()
                .and_then(|o| deref(self.doc, o).as_dict().ok())
            else {
                continue;
            };
            let target = self.merged.entry(category.to_vec()).or_default();
            for (name, obj) in dict.iter() {
                target.set(renamed(prefix, name), obj.clone());
            }
        }
    }

    /// Renames the resource operand at `index` when `res` defines it in `category`.
    fn rename_operand(
        &self,
        op: &mut Operation,
        index: usize,
        category: &[u8],
        res: &Dictionary,
        prefix: Option<&str>,
    ) {
        let Some(prefix) = prefix else { return };
        let Some(Object::Name(name)) = op.operands.get(index) else {
            return;
        };
        let known = category_dict(self.doc, res, category).is_some_and(|d| d.get(name).is_ok());
        if known {
            let new = renamed(Some(prefix), name);
            op.operands[index] = Object::Name(new);
        }
    }

    fn expand(
        &mut self,
        ops: Vec<Operation>,
        res: &Dictionary,
        prefix: Option<&str>,
        depth: usize,
        out: &mut Vec<Operation>,
    ) -> Result<(), String> {
        for mut op in ops {
            self.ops += 1;
            if self.ops > MAX_OPS {
                return Err("content too large after inlining forms".to_string());
            }
            match op.operator.as_str() {
                // Inline images: no text, and lopdf cannot re-encode them.
                "BI" => continue,
                "Do" => {
                    let doc = self.doc;
                    if let Some((stream, own_res)) = form_of(doc, res, &op) {
                        if depth >= MAX_DEPTH {
                            continue;
                        }
                        self.inline_form(stream, own_res, res, prefix, depth, out)?;
                    }
                    // Images and other XObjects hold no text.
                    continue;
                }
                "Tf" => self.rename_operand(&mut op, 0, b"Font", res, prefix),
                "gs" => self.rename_operand(&mut op, 0, b"ExtGState", res, prefix),
                "cs" | "CS" => self.rename_operand(&mut op, 0, b"ColorSpace", res, prefix),
                "sh" => self.rename_operand(&mut op, 0, b"Shading", res, prefix),
                "scn" | "SCN" => {
                    let last = op.operands.len().saturating_sub(1);
                    self.rename_operand(&mut op, last, b"Pattern", res, prefix);
                }
                "BDC" | "DP" => self.rename_operand(&mut op, 1, b"Properties", res, prefix),
                _ => {}
            }
            out.push(op);
        }
        Ok(())
    }

    fn inline_form(
        &mut self,
        stream: &Stream,
        own_res: Option<&Dictionary>,
        parent_res: &Dictionary,
        parent_prefix: Option<&str>,
        depth: usize,
        out: &mut Vec<Operation>,
    ) -> Result<(), String> {
        let bytes = if stream.dict.get(b"Filter").is_ok() {
            stream
                .decompressed_content()
                .map_err(|e| format!("form content: {e}"))?
        } else {
            stream.content.clone()
        };
        let Ok(content) = Content::decode(&bytes) else {
            // An undecodable figure loses its labels, not the page.
            return Ok(());
        };
        out.push(Operation::new("q", vec![]));
        if let Ok(m) = stream.dict.get(b"Matrix").and_then(Object::as_array)
            && m.len() == 6
            && m.iter().all(|v| v.as_float().is_ok() || v.as_i64().is_ok())
        {
            out.push(Operation::new("cm", m.clone()));
        }
        match own_res {
            Some(own) => {
                self.counter += 1;
                let prefix = format!("pdx{}_", self.counter);
                let own = own.clone();
                self.register(&own, Some(&prefix));
                self.expand(content.operations, &own, Some(&prefix), depth + 1, out)?;
            }
            // Without its own resources a form uses its parent's names.
            None => self.expand(
                content.operations,
                parent_res,
                parent_prefix,
                depth + 1,
                out,
            )?,
        }
        out.push(Operation::new("Q", vec![]));
        Ok(())
    }
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

/// The form XObject a `Do` draws, with its own resources if it has any.
fn form_of<'a>(
    doc: &'a Document,
    res: &'a Dictionary,
    op: &Operation,
) -> Option<(&'a Stream, Option<&'a Dictionary>)> {
    let name = op.operands.first()?.as_name().ok()?;
    let xobjects = category_dict(doc, res, b"XObject")?;
    let stream = deref(doc, xobjects.get(name).ok()?).as_stream().ok()?;
    let subtype = stream.dict.get(b"Subtype").ok()?.as_name().ok()?;
    if subtype != b"Form" {
        return None;
    }
    let own = stream
        .dict
        .get(b"Resources")
        .ok()
        .and_then(|o| deref(doc, o).as_dict().ok());
    Some((stream, own))
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
        let page_content = b"q 1 0 0 1 100 200 cm /Fm1 Do Q /Im1 Do".to_vec();
        let content_id = doc.add_object(Stream::new(Dictionary::new(), page_content));
        let pages_id = doc.new_object_id();
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            "Resources" => dictionary! { "XObject" => dictionary! { "Fm1" => form, "Im1" => image } },
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(
                dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
            ),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);

        assert_eq!(inline_page(&mut doc, page_id), Ok(true));
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
