//! Prediction inputs: takes what a client or a file gives — JSON rows (objects of column
//! values), CSV or JSON Lines text, images as PNG/JPEG bytes, base64, nested number arrays,
//! image files, directories of them, or IDX files — and gives a table of raw values or image
//! bytes in the model's declared shape, checked against the run's input schema. Every bad input
//! is an `InputError` naming the row (0-based) and the field.

use crate::data::csv::{self, Table};
use crate::data::schema::is_missing;
use crate::rundir::{InputKind, InputSchema};
use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why an input was rejected, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct InputError {
    /// A short machine-readable reason (`malformed`, `missing_field`, `unknown_field`,
    /// `wrong_type`, `not_finite`, `image`, `too_many_rows`, ...).
    pub reason: &'static str,
    /// The row, 0-based, when one is at fault.
    pub row: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(reason: &'static str, message: impl Into<String>) -> InputError {
        InputError {
            reason,
            row: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, row: usize, field: Option<&str>) -> InputError {
        self.row = Some(row);
        self.field = field.map(str::to_string);
        self
    }

    /// The message with its row and field, for people.
    pub fn full_message(&self) -> String {
        match (self.row, &self.field) {
            (Some(r), Some(f)) => format!("row {r}, field `{f}`: {}", self.message),
            (Some(r), None) => format!("row {r}: {}", self.message),
            (None, Some(f)) => format!("field `{f}`: {}", self.message),
            (None, None) => self.message.clone(),
        }
    }
}

/// Rows ready to become model input.
pub enum Rows {
    /// Raw column values as text (as a CSV file holds them).
    Table(Table),
    /// Images in the declared shape, `bytes per image * n` bytes.
    Images(Vec<u8>),
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The rows of a JSON `instances` list (or JSON Lines), checked against the schema: every
/// feature present, no other field, each value of its column's type.
pub fn from_instances(schema: &InputSchema, instances: &[Value]) -> Result<Rows, InputError> {
    if let Some((name, shape)) = schema.image() {
        let size: usize = shape.iter().product();
        let mut pixels = Vec::with_capacity(size * instances.len());
        for (r, inst) in instances.iter().enumerate() {
            // `{"image": ...}`, or the bare image of a one-feature model.
            let v = match inst {
                Value::Object(m) if m.contains_key(name) => {
                    if let Some(k) = m.keys().find(|k| *k != name) {
                        return Err(InputError::new(
                            "unknown_field",
                            format!("the model takes only the image `{name}`"),
                        )
                        .at(r, Some(k)));
                    }
                    &m[name]
                }
                Value::Object(m) if m.contains_key("b64") => inst,
                Value::Array(_) => inst,
                _ => {
                    return Err(InputError::new(
                        "missing_field",
                        format!(
                            "a row must be {{\"{name}\": IMAGE}} where IMAGE is {{\"b64\": \"<base64 PNG or JPEG>\"}} or nested arrays of pixel values"
                        ),
                    )
                    .at(r, Some(name)));
                }
            };
            let img = image_value(v, shape).map_err(|m| {
                InputError::new(
                    if m.starts_with("expected") {
                        "wrong_type"
                    } else {
                        "image"
                    },
                    m,
                )
                .at(r, Some(name))
            })?;
            pixels.extend_from_slice(&img);
        }
        return Ok(Rows::Images(pixels));
    }
    let header: Vec<String> = schema.features.iter().map(|f| f.name.clone()).collect();
    let mut rows = Vec::with_capacity(instances.len());
    for (r, inst) in instances.iter().enumerate() {
        let Value::Object(m) = inst else {
            return Err(InputError::new(
                "wrong_type",
                format!(
                    "a row must be an object of column values, not {}",
                    value_kind(inst)
                ),
            )
            .at(r, None));
        };
        if let Some(k) = m.keys().find(|k| !header.contains(k)) {
            return Err(InputError::new(
                "unknown_field",
                format!(
                    "the model has no feature column `{k}` (its columns: {})",
                    header.join(", ")
                ),
            )
            .at(r, Some(k)));
        }
        let mut row = Vec::with_capacity(header.len());
        for f in &schema.features {
            let Some(v) = m.get(&f.name) else {
                return Err(InputError::new(
                    "missing_field",
                    "the row lacks this feature column (send null for a missing value)",
                )
                .at(r, Some(&f.name)));
            };
            let text = match (&f.kind, v) {
                (_, Value::Null) => String::new(),
                (InputKind::Number, Value::Number(n)) => n.to_string(),
                (InputKind::Number, Value::String(s)) if is_missing(s.trim(), &schema.missing) => {
                    String::new()
                }
                (InputKind::Category { .. }, Value::String(s)) => s.clone(),
                (InputKind::Category { .. }, Value::Number(n)) => n.to_string(),
                (InputKind::Number, other) => {
                    return Err(InputError::new(
                        "wrong_type",
                        format!("expected a number or null, got {}", value_kind(other)),
                    )
                    .at(r, Some(&f.name)));
                }
                (_, other) => {
                    return Err(InputError::new(
                        "wrong_type",
                        format!("expected a string or null, got {}", value_kind(other)),
                    )
                    .at(r, Some(&f.name)));
                }
            };
            row.push(text);
        }
        rows.push(row);
    }
    let mut table = Table::new(header);
    for (r, row) in rows.iter().enumerate() {
        table
            .push(row, r + 1)
            .map_err(|e| InputError::new("malformed", e.message))?;
    }
    check_table(schema, &table, true)?;
    Ok(Rows::Table(table))
}

/// CSV text with a header as rows; `strict` rejects columns the model does not take.
pub fn from_csv(schema: &InputSchema, text: &str, strict: bool) -> Result<Rows, InputError> {
    if schema.image().is_some() {
        return Err(InputError::new(
            "malformed",
            "this model takes images: send JSON instances with base64 PNG/JPEG or pixel arrays",
        ));
    }
    let mut t = csv::parse(text, schema.separator)
        .map_err(|e| InputError::new("malformed", format!("line {}: {}", e.line, e.message)))?;
    check_table(schema, &t, strict)?;
    // Later errors name rows (from 0), as for JSON rows, not the text's lines.
    t.lines = (1..=t.len()).collect();
    Ok(Rows::Table(t))
}

/// JSON Lines: one JSON object (a row) per line.
pub fn from_json_lines(schema: &InputSchema, text: &str) -> Result<Rows, InputError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| {
            InputError::new("malformed", format!("line {}: {e}", i + 1)).at(rows.len(), None)
        })?;
        rows.push(v);
    }
    from_instances(schema, &rows)
}

/// Every feature column present (and, `strict`, no other); numbers finite or missing.
fn check_table(schema: &InputSchema, t: &Table, strict: bool) -> Result<(), InputError> {
    for f in &schema.features {
        if !t.header.iter().any(|h| h == &f.name) {
            return Err(InputError {
                reason: "missing_field",
                row: None,
                field: Some(f.name.clone()),
                message: "the input lacks this feature column".into(),
            });
        }
    }
    if strict
        && let Some(h) = t
            .header
            .iter()
            .find(|h| !schema.features.iter().any(|f| &f.name == *h))
    {
        return Err(InputError {
            reason: "unknown_field",
            row: None,
            field: Some(h.clone()),
            message: "the model has no such feature column".into(),
        });
    }
    for f in &schema.features {
        if !matches!(f.kind, InputKind::Number) {
            continue;
        }
        let Some(c) = t.header.iter().position(|h| h == &f.name) else {
            continue;
        };
        for r in 0..t.len() {
            let v = t.get(r, c).trim();
            if v.is_empty() || is_missing(v, &schema.missing) {
                continue;
            }
            match v.parse::<f64>() {
                Ok(x) if x.is_nan() => {}
                Ok(x) if x.is_finite() => {}
                Ok(_) => {
                    return Err(InputError::new(
                        "not_finite",
                        format!("`{v}` is not a finite number"),
                    )
                    .at(r, Some(&f.name)));
                }
                Err(_) => {
                    return Err(InputError::new(
                        "wrong_type",
                        format!("expected a number, got \"{v}\""),
                    )
                    .at(r, Some(&f.name)));
                }
            }
        }
    }
    Ok(())
}

/// Channels, height and width of a declared image shape (`[C, H, W]` or `[H, W]`).
fn chw(shape: &[usize]) -> Result<(usize, usize, usize), String> {
    match shape {
        [h, w] => Ok((1, *h, *w)),
        [c, h, w] if *c == 1 || *c == 3 => Ok((*c, *h, *w)),
        _ => Err(format!(
            "images can be decoded only for a feature of shape [H, W], [1, H, W] or [3, H, W], not {shape:?}"
        )),
    }
}

/// PNG or JPEG bytes as raw pixels in `shape` (planar channels: grey, or R, G and B). A size
/// other than the declared one is an error, or, with `resize`, scaled to it.
pub fn decode_image(bytes: &[u8], shape: &[usize], resize: bool) -> Result<Vec<u8>, String> {
    let (c, h, w) = chw(shape)?;
    let format = image::guess_format(bytes)
        .map_err(|_| "the data is not a PNG or JPEG image".to_string())?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(format!(
            "the image is {format:?}; PNG and JPEG are accepted"
        ));
    }
    let reader = || image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    // The header first: an image of another size is refused before any pixel is decoded, and
    // a hostile header cannot make us allocate gigabytes.
    let (iw, ih) = reader()
        .into_dimensions()
        .map_err(|e| format!("the image does not decode: {e}"))?;
    let (iw, ih) = (iw as usize, ih as usize);
    if (iw, ih) != (w, h) && !resize {
        return Err(format!(
            "the image is {iw}x{ih} pixels, but the model takes {w}x{h}"
        ));
    }
    if iw * ih > 64 << 20 {
        return Err(format!(
            "the image is {iw}x{ih} pixels: too large to decode"
        ));
    }
    let mut r = reader();
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(1 << 30);
    r.limits(limits);
    let img = r
        .decode()
        .map_err(|e| format!("the image does not decode: {e}"))?;
    let img = if (iw, ih) == (w, h) {
        img
    } else {
        img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
    };
    Ok(if c == 1 {
        img.to_luma8().into_raw()
    } else {
        let rgb = img.to_rgb8().into_raw();
        let mut planar = vec![0u8; rgb.len()];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for (ch, v) in px.iter().enumerate() {
                planar[ch * w * h + i] = *v;
            }
        }
        planar
    })
}

/// An image in a JSON value: `{"b64": "<base64 PNG or JPEG>"}`, or nested arrays of pixel
/// values 0..=255 in the declared shape (a leading channel of 1 may be left out).
pub fn image_value(v: &Value, shape: &[usize]) -> Result<Vec<u8>, String> {
    match v {
        Value::Object(m) => {
            let Some(Value::String(b)) = m.get("b64") else {
                return Err(
                    "expected {\"b64\": \"<base64 PNG or JPEG>\"} or nested arrays of pixel values"
                        .into(),
                );
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| format!("the b64 field is not valid base64: {e}"))?;
            decode_image(&bytes, shape, false)
        }
        Value::Array(_) => {
            let size: usize = shape.iter().product();
            let mut out = Vec::with_capacity(size);
            let dims: &[usize] = match shape {
                [1, rest @ ..] if depth(v) == rest.len() => rest,
                _ => shape,
            };
            flatten(v, dims, &mut out)?;
            Ok(out)
        }
        other => Err(format!(
            "expected an image ({{\"b64\": ...}} or nested arrays), got {}",
            value_kind(other)
        )),
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.first().map_or(0, depth),
        _ => 0,
    }
}

fn flatten(v: &Value, dims: &[usize], out: &mut Vec<u8>) -> Result<(), String> {
    match (v, dims) {
        (Value::Array(a), [n, rest @ ..]) => {
            if a.len() != *n {
                return Err(format!(
                    "an array of {} where the shape needs {n} (shape {dims:?})",
                    a.len()
                ));
            }
            a.iter().try_for_each(|x| flatten(x, rest, out))
        }
        (Value::Number(n), []) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if !(0.0..=255.0).contains(&x) || x.fract() != 0.0 {
                return Err(format!(
                    "pixel value {n} is not a whole number from 0 to 255"
                ));
            }
            out.push(x as u8);
            Ok(())
        }
        (_, []) => Err(format!("a pixel must be a number, not {}", value_kind(v))),
        (_, _) => Err(format!(
            "expected an array where the shape has {} more dimension(s)",
            dims.len()
        )),
    }
}

pub fn is_image_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Where each image came from: its file, and its record (1 for an image file).
pub type Origins = Vec<(PathBuf, usize)>;

/// Image inputs from files: PNG/JPEG files (by extension), directories of them (sorted by
/// name), and IDX files (anything else, plain or gzipped).
/// Gives the pixels and, per image, its file and record (1 for an image file).
pub fn read_images(
    inputs: &[PathBuf],
    shape: &[usize],
    resize: bool,
) -> Result<(Vec<u8>, Origins), String> {
    let size: usize = shape.iter().product();
    let mut pixels = Vec::new();
    let mut origins = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| format!("cannot read {}: {e}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image_file(p))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(format!("{} holds no PNG or JPEG files", input.display()));
            }
            for f in files {
                pixels.extend(read_image_file(&f, shape, resize)?);
                origins.push((f, 1));
            }
        } else if is_image_file(input) {
            pixels.extend(read_image_file(input, shape, resize)?);
            origins.push((input.clone(), 1));
        } else {
            // Anything else is read as an IDX file (raw or gzipped), which says if it is not.
            let (dims, data) = crate::data::idx::load(input)
                .map_err(|e| format!("{}: {}", input.display(), e.message))?;
            let per: usize = dims.iter().skip(1).product();
            if dims.len() < 2 || per != size {
                return Err(format!(
                    "{} holds images of shape {:?}, but the model takes {shape:?}",
                    input.display(),
                    dims.get(1..).unwrap_or(&[])
                ));
            }
            origins.extend((1..=dims[0]).map(|i| (input.clone(), i)));
            pixels.extend(data);
        }
    }
    Ok((pixels, origins))
}

fn read_image_file(path: &Path, shape: &[usize], resize: bool) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), csv::io_message(&e)))?;
    decode_image(&bytes, shape, resize).map_err(|m| format!("{}: {m}", path.display()))
}
