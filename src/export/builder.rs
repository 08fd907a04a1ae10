//! Assembling an ONNX graph: fresh value names, nodes with attributes, initializers, and the
//! shapes that depend on the batch size (`Dim::Batch`), computed in the graph from the number
//! of rows of the first input so the exported model takes any number of rows.

use super::proto::{self, Attribute, Tensor, attr, dtype};
use std::collections::HashMap;

/// One axis of an exported tensor: a fixed size, or `k` times the number of rows `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Fixed(usize),
    Batch(usize),
}

#[derive(Default)]
pub struct Builder {
    pub nodes: Vec<proto::Node>,
    pub initializers: Vec<Tensor>,
    next: usize,
    /// Initializers by content, so a constant used twice is stored once.
    constants: HashMap<String, String>,
    shapes: HashMap<Vec<Dim>, String>,
    /// An input with the rows on its first axis: where `N` is read from.
    pub rows_from: Option<String>,
    rows: Option<String>,
}

impl Builder {
    /// A value name no other value has (inputs and outputs keep the names users see).
    pub fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("mlx/{hint}_{}", self.next)
    }

    /// A node of the default domain with one output.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attributes: Vec<Attribute>) -> String {
        let out = self.fresh(&op_type.to_ascii_lowercase());
        self.op_into(op_type, "", inputs, attributes, &out);
        out
    }

    /// A node of `domain` writing the values named `outs`.
    pub fn op_outputs(
        &mut self,
        op_type: &str,
        domain: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
        outs: &[&str],
    ) {
        self.nodes.push(proto::Node {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op_type}_{}", self.nodes.len()),
            op_type: op_type.to_string(),
            attribute: attributes,
            doc_string: String::new(),
            domain: domain.to_string(),
        });
    }

    /// A node writing the value named `out`.
    pub fn op_into(
        &mut self,
        op_type: &str,
        domain: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
        out: &str,
    ) {
        self.op_outputs(op_type, domain, inputs, attributes, &[out]);
    }

    fn constant(&mut self, key: String, tensor: impl FnOnce(String) -> Tensor) -> String {
        self.named_constant(key, None, tensor)
    }

    fn named_constant(
        &mut self,
        key: String,
        name: Option<String>,
        tensor: impl FnOnce(String) -> Tensor,
    ) -> String {
        if let Some(n) = self.constants.get(&key) {
            return n.clone();
        }
        let name = name.unwrap_or_else(|| self.fresh("const"));
        self.initializers.push(tensor(name.clone()));
        self.constants.insert(key, name.clone());
        name
    }

    /// A constant of little-endian numbers, stored once per content.
    fn raw(&mut self, dims: &[usize], data_type: i32, bytes: Vec<u8>) -> String {
        let key = format!("{data_type} {dims:?} {bytes:?}");
        self.constant(key, |name| {
            numbers(name, dims, data_type, bytes.into_iter())
        })
    }

    pub fn f32s(&mut self, dims: &[usize], data: &[f32]) -> String {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.raw(dims, dtype::FLOAT, bytes)
    }

    pub fn f64s(&mut self, dims: &[usize], data: &[f64]) -> String {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.raw(dims, dtype::DOUBLE, bytes)
    }

    pub fn i64s(&mut self, dims: &[usize], data: &[i64]) -> String {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.raw(dims, dtype::INT64, bytes)
    }

    pub fn i32s(&mut self, dims: &[usize], data: &[i32]) -> String {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.raw(dims, dtype::INT32, bytes)
    }

    pub fn strings(&mut self, dims: &[usize], data: &[String]) -> String {
        let key = format!("str {dims:?} {data:?}");
        self.constant(key, |name| Tensor {
            dims: dims.iter().map(|d| *d as i64).collect(),
            data_type: dtype::STRING,
            string_data: data.iter().map(|s| s.as_bytes().to_vec()).collect(),
            name,
            raw_data: Vec::new(),
        })
    }

    /// A weight tensor, stored under its own name (`dense_0.w`).
    pub fn weight(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let key = format!("weight {name}");
        let stored = format!("mlx/state/{name}");
        self.named_constant(key, Some(stored), |n| {
            numbers(
                n,
                dims,
                dtype::FLOAT,
                data.iter().flat_map(|v| v.to_le_bytes()),
            )
        })
    }

    /// The number of rows, as an int64 tensor `[1]`.
    fn rows(&mut self) -> String {
        if let Some(r) = &self.rows {
            return r.clone();
        }
        let from = self.rows_from.clone().unwrap_or_default();
        let shape = self.op("Shape", &[&from], vec![]);
        let zero = self.i64s(&[1], &[0]);
        let r = self.op("Gather", &[&shape, &zero], vec![int("axis", 0)]);
        self.rows = Some(r.clone());
        r
    }

    /// `dims` as an int64 shape tensor, computed from `N` where an axis depends on it.
    pub fn shape(&mut self, dims: &[Dim]) -> String {
        if let Some(s) = self.shapes.get(dims) {
            return s.clone();
        }
        let s = if let Some(fixed) = fixed(dims) {
            let v: Vec<i64> = fixed.iter().map(|d| *d as i64).collect();
            self.i64s(&[v.len()], &v)
        } else {
            let mut parts: Vec<String> = Vec::new();
            let mut run: Vec<i64> = Vec::new();
            for d in dims {
                match d {
                    Dim::Fixed(n) => run.push(*n as i64),
                    Dim::Batch(k) => {
                        if !run.is_empty() {
                            let c = self.i64s(&[run.len()], &run);
                            parts.push(c);
                            run.clear();
                        }
                        let n = self.rows();
                        let part = if *k == 1 {
                            n
                        } else {
                            let k = self.i64s(&[1], &[*k as i64]);
                            self.op("Mul", &[&n, &k], vec![])
                        };
                        parts.push(part);
                    }
                }
            }
            if !run.is_empty() {
                let c = self.i64s(&[run.len()], &run);
                parts.push(c);
            }
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            if refs.len() == 1 {
                parts[0].clone()
            } else {
                self.op("Concat", &refs, vec![int("axis", 0)])
            }
        };
        self.shapes.insert(dims.to_vec(), s.clone());
        s
    }
}

/// The sizes, when none depends on the number of rows.
pub fn fixed(dims: &[Dim]) -> Option<Vec<usize>> {
    dims.iter()
        .map(|d| match d {
            Dim::Fixed(n) => Some(*n),
            Dim::Batch(_) => None,
        })
        .collect()
}

fn numbers(
    name: String,
    dims: &[usize],
    data_type: i32,
    bytes: impl Iterator<Item = u8>,
) -> Tensor {
    Tensor {
        dims: dims.iter().map(|d| *d as i64).collect(),
        data_type,
        string_data: Vec::new(),
        name,
        raw_data: bytes.collect(),
    }
}

pub fn int(name: &str, i: i64) -> Attribute {
    Attribute {
        name: name.into(),
        i,
        r#type: attr::INT,
        ..Attribute::default()
    }
}

pub fn ints(name: &str, ints: &[i64]) -> Attribute {
    Attribute {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: attr::INTS,
        ..Attribute::default()
    }
}

pub fn floats(name: &str, floats: &[f32]) -> Attribute {
    Attribute {
        name: name.into(),
        floats: floats.to_vec(),
        r#type: attr::FLOATS,
        ..Attribute::default()
    }
}

pub fn float(name: &str, f: f32) -> Attribute {
    Attribute {
        name: name.into(),
        f,
        r#type: attr::FLOAT,
        ..Attribute::default()
    }
}

pub fn string(name: &str, s: &str) -> Attribute {
    Attribute {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: attr::STRING,
        ..Attribute::default()
    }
}

pub fn strings(name: &str, ss: &[String]) -> Attribute {
    Attribute {
        name: name.into(),
        strings: ss.iter().map(|s| s.as_bytes().to_vec()).collect(),
        r#type: attr::STRINGS,
        ..Attribute::default()
    }
}

/// A one-element tensor attribute (`ConstantOfShape`'s `value`).
pub fn tensor(name: &str, t: Tensor) -> Attribute {
    Attribute {
        name: name.into(),
        t: Some(t),
        r#type: attr::TENSOR,
        ..Attribute::default()
    }
}

/// A one-element tensor of `value` in the given type (FLOAT or INT32).
pub fn one(value: f32, data_type: i32) -> Tensor {
    let raw_data = if data_type == dtype::INT32 {
        (value as i32).to_le_bytes().to_vec()
    } else {
        value.to_le_bytes().to_vec()
    };
    Tensor {
        dims: vec![1],
        data_type,
        string_data: Vec::new(),
        name: String::new(),
        raw_data,
    }
}

/// A tensor value's type and shape, axes that depend on the rows named `N`.
pub fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> proto::ValueInfo {
    proto::ValueInfo {
        name: name.into(),
        r#type: Some(proto::Type {
            tensor_type: Some(proto::TensorType {
                elem_type,
                shape: Some(proto::Shape {
                    dim: dims
                        .iter()
                        .map(|d| proto::Dim {
                            value: Some(match d {
                                Dim::Fixed(n) => proto::DimValue::Value(*n as i64),
                                Dim::Batch(1) => proto::DimValue::Param("N".into()),
                                Dim::Batch(k) => proto::DimValue::Param(format!("{k}*N")),
                            }),
                        })
                        .collect(),
                }),
            }),
        }),
        doc_string: String::new(),
    }
}
