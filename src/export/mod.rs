//! `mlx export`: a completed run as one ONNX model, from the raw input columns to the answer.
//! Takes a run directory (its lock checked as for `mlx predict`), gives `model.onnx`: the
//! fitted preprocessing (`prep`), the model's prediction function translated op by op from
//! the IR (`model`), and the outputs `probabilities [N, K]` and `label [N]` (class names) or
//! `value [N, 1]`. Messages are prost structs (`proto`); the graph is assembled by `builder`.

pub mod builder;
pub mod model;
pub mod prep;
pub mod proto;
pub mod trees;

use crate::diagnostics::Diagnostic;
use crate::predict::model::{Failed, Reopened};
use crate::rundir;
use crate::source::SourceMap;
use crate::train::graph::{self, Spec};
use builder::{Builder, Dim};
use prost::Message;
use proto::dtype;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The default opset of the graph; `CategoryMapper` comes from `ai.onnx.ml` version 1.
pub const OPSET: i64 = 17;
const ML_OPSET: i64 = 1;
/// The ONNX IR version of opset 17.
const IR_VERSION: i64 = 8;

pub struct Options {
    pub output: Option<PathBuf>,
    pub model: Option<String>,
    pub ignore_lock: bool,
    /// Standard operators only: a tree model as its prediction program (gathers, comparisons,
    /// sums) instead of the `ai.onnx.ml` tree operators, for runtimes without them.
    pub plain: bool,
}

/// What `mlx export` wrote.
pub struct Exported {
    pub path: PathBuf,
    pub bytes: usize,
    pub nodes: usize,
}

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

/// Export the run in `dir` to ONNX: `-o` or `<dir>/model.onnx`. Nothing is written when any
/// part cannot be exported.
pub fn export(dir: &Path, opts: &Options) -> Result<Exported, Failed> {
    let r = Reopened::open(dir, opts.ignore_lock)?;
    let bytes = onnx_bytes(&r, opts.model.as_deref(), opts.plain)
        .map_err(|d| (r.sources().clone(), vec![d]))?;
    let path = opts
        .output
        .clone()
        .unwrap_or_else(|| r.run.path(rundir::ONNX));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(fail(Diagnostic::error(
            "mlx::export::write",
            format!(
                "cannot write {}: {} is not a directory",
                path.display(),
                parent.display()
            ),
        )));
    }
    rundir::write_atomic(&path, &bytes).map_err(|e| {
        fail(Diagnostic::error(
            "mlx::export::write",
            format!("cannot write {}: {e}", path.display()),
        ))
    })?;
    let nodes = proto::Model::decode(bytes.as_slice())
        .ok()
        .and_then(|m| m.graph)
        .map_or(0, |g| g.node.len());
    Ok(Exported {
        path,
        bytes: bytes.len(),
        nodes,
    })
}

/// The serialized ONNX model of a reopened run; `plain`: standard operators only (see
/// `Options::plain`).
pub fn onnx_bytes(
    r: &Reopened,
    model_name: Option<&str>,
    plain: bool,
) -> Result<Vec<u8>, Diagnostic> {
    let (program, plan, _) = r.plans_any().map_err(first)?;
    if plan.multi.is_some() {
        return slot_bytes(r, program, plan, model_name);
    }
    let (program, plan, dataset) = r.plans().map_err(first)?;
    let own = plan
        .model_call
        .split('(')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if let Some(want) = model_name
        && want != own
    {
        return Err(Diagnostic::error(
            "mlx::export::model",
            format!("the run `{}` has no model `{want}`", plan.name),
        )
        .with_help(format!("its model is `{own}`")));
    }
    let input = r.run.input()?;
    let preprocessor = r.run.preprocessor()?;
    let spec = Spec {
        hir: program,
        plan,
        dataset,
        train_batches: Vec::new(),
        eval_batches: Vec::new(),
        predict_batches: model::PROBES.to_vec(),
        shard_batches: Vec::new(),
    };
    let built = graph::build(&spec)?;
    let f = |b: usize| {
        built
            .predict
            .get(&b)
            .map(|i| &built.program.functions[*i])
            .ok_or_else(|| Diagnostic::internal("a prediction function is missing"))
    };
    let (fa, fb) = (f(model::PROBES[0])?, f(model::PROBES[1])?);
    let dims = model::dims(fa, fb)?;
    let states = r.run.weights()?;

    let mut b = Builder::default();
    let prepared = prep::preprocess(
        &mut b,
        &preprocessor,
        &input.missing,
        &dataset.feature_shape,
    )?;
    let (out, out_dims) = match &plan.trees {
        Some(p) if !plain => {
            let classes = input.classes().map(<[String]>::len);
            let out = trees::translate(&mut b, p, classes, &states, &prepared.x)?;
            (out, vec![Dim::Batch(1), Dim::Fixed(classes.unwrap_or(1))])
        }
        _ => {
            let weights: HashMap<String, (Vec<usize>, Vec<f32>)> = states
                .into_iter()
                .map(|t| (t.name, (t.shape, t.data)))
                .collect();
            let outs = model::translate(
                &mut b,
                fa,
                &dims,
                &built.program.states,
                &weights,
                &prepared.x,
            )?;
            first_output(outs, fa, &dims)?
        }
    };
    // A row with a value missing after preprocessing has no prediction: NaN.
    let nan = b.f32s(&[], &[f32::NAN]);
    let out = b.op("Where", &[&prepared.unusable, &nan, &out], vec![]);
    let mut outputs = Vec::new();
    match input.classes() {
        Some(classes) => {
            b.op_into("Identity", "", &[&out], vec![], "probabilities");
            outputs.push(builder::value_info(
                "probabilities",
                dtype::FLOAT,
                &out_dims,
            ));
            let best = b.op(
                "ArgMax",
                &[&out],
                vec![builder::int("axis", 1), builder::int("keepdims", 0)],
            );
            let names = b.strings(&[classes.len()], classes);
            b.op_into(
                "Gather",
                "",
                &[&names, &best],
                vec![builder::int("axis", 0)],
                "label",
            );
            outputs.push(builder::value_info(
                "label",
                dtype::STRING,
                &[Dim::Batch(1)],
            ));
        }
        None => {
            b.op_into("Identity", "", &[&out], vec![], "value");
            outputs.push(builder::value_info("value", dtype::FLOAT, &out_dims));
        }
    }

    let mut metadata_props = provenance(r, &plan.name, plan.model_call.clone());
    let classes = input.classes().map(|c| c.join(","));
    if let Some(c) = classes {
        metadata_props.push(proto::StringPair {
            key: "classes".into(),
            value: c,
        });
    }
    let graph = proto::Graph {
        node: b.nodes,
        name: plan.name.clone(),
        initializer: b.initializers,
        doc_string: format!(
            "{}: raw columns -> fitted preprocessing -> {}",
            plan.name, plan.model_call
        ),
        input: prepared.inputs,
        output: outputs,
    };
    let model = proto::Model {
        ir_version: IR_VERSION,
        producer_name: "mlx".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: String::new(),
        graph: Some(graph),
        opset_import: vec![
            proto::OpsetId {
                domain: String::new(),
                version: OPSET,
            },
            proto::OpsetId {
                domain: "ai.onnx.ml".into(),
                version: ML_OPSET,
            },
        ],
        metadata_props,
    };
    Ok(model.encode_to_vec())
}

/// One model of a train with objectives (`--model g`) as ONNX: its input tensor as the model
/// saw it (`input [N, ...]`, e.g. a latent vector; no preprocessing), its output as `value`.
fn slot_bytes(
    r: &Reopened,
    program: &crate::check::hir::Program,
    plan: &crate::check::hir::TrainPlan,
    model_name: Option<&str>,
) -> Result<Vec<u8>, Diagnostic> {
    let multi = plan
        .multi
        .as_ref()
        .ok_or_else(|| Diagnostic::internal("not a train with objectives"))?;
    let names: Vec<&str> = multi.models.iter().map(|s| s.name.as_str()).collect();
    let Some(want) = model_name else {
        return Err(Diagnostic::error(
            "mlx::export::model",
            format!(
                "run `{}` trained {} models ({}): say which to export",
                plan.name,
                names.len(),
                names.join(", ")
            ),
        )
        .with_help(format!("add `--model {}`", names[0])));
    };
    let slot =
        crate::predict::slot::find(plan, want, "mlx::export::model").map_err(|(_, mut d)| {
            d.pop()
                .unwrap_or_else(|| Diagnostic::internal("no diagnostic"))
        })?;
    let (prog, fns, row) = graph::slot_program(program, plan, slot, &model::PROBES)?;
    let f = |b: usize| {
        fns.get(&b)
            .map(|i| &prog.functions[*i])
            .ok_or_else(|| Diagnostic::internal("a prediction function is missing"))
    };
    let (fa, fb) = (f(model::PROBES[0])?, f(model::PROBES[1])?);
    let dims = model::dims(fa, fb)?;
    let weights: HashMap<String, (Vec<usize>, Vec<f32>)> = r
        .run
        .weights()?
        .into_iter()
        .map(|t| (t.name, (t.shape, t.data)))
        .collect();
    let mut b = Builder::default();
    b.rows_from = Some("input".into());
    let mut in_dims = vec![Dim::Batch(1)];
    in_dims.extend(row.iter().map(|n| Dim::Fixed(*n)));
    let input = builder::value_info("input", dtype::FLOAT, &in_dims);
    let outs = model::translate(&mut b, fa, &dims, &prog.states, &weights, "input")?;
    let (out, out_dims) = first_output(outs, fa, &dims)?;
    b.op_into("Identity", "", &[&out], vec![], "value");
    let metadata_props = provenance(r, &plan.name, format!("{} = {}", slot.name, slot.call));
    let graph = proto::Graph {
        node: b.nodes,
        name: format!("{}.{}", plan.name, slot.name),
        initializer: b.initializers,
        doc_string: format!("{}: model `{}` = {}", plan.name, slot.name, slot.call),
        input: vec![input],
        output: vec![builder::value_info("value", dtype::FLOAT, &out_dims)],
    };
    let model = proto::Model {
        ir_version: IR_VERSION,
        producer_name: "mlx".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: String::new(),
        graph: Some(graph),
        opset_import: vec![proto::OpsetId {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props,
    };
    Ok(model.encode_to_vec())
}

/// The graph value of the prediction function's first output and its axes (`outs` from
/// `model::translate` of `f`, `dims` from `model::dims`).
fn first_output(
    outs: Vec<(String, String)>,
    f: &crate::ir::Function,
    dims: &[Vec<Dim>],
) -> Result<(String, Vec<Dim>), Diagnostic> {
    let (out_name, out) = outs
        .into_iter()
        .next()
        .ok_or_else(|| Diagnostic::internal("a prediction function without output"))?;
    let out_dims = f
        .outputs
        .iter()
        .find(|(n, _)| *n == out_name)
        .map(|(_, v)| dims[*v].clone())
        .unwrap_or_default();
    Ok((out, out_dims))
}

/// Where an exported model comes from: mlx's version, the train, the model, and the hashes
/// of the run's lock and weights.
fn provenance(r: &Reopened, train: &str, model: String) -> Vec<proto::StringPair> {
    let lock_hash = rundir::sha256_file(&r.run.path(rundir::lock::FILE))
        .map(|h| format!("sha256:{h}"))
        .unwrap_or_default();
    let meta = |k: &str, v: String| proto::StringPair {
        key: k.into(),
        value: v,
    };
    let mut out = vec![
        meta("mlx_version", env!("CARGO_PKG_VERSION").into()),
        meta("train", train.to_string()),
        meta("model", model),
        meta("lock", lock_hash),
    ];
    if let Some(l) = r.run.lock().ok().and_then(|l| l.model) {
        out.push(meta("weights", l));
    }
    out
}

fn first((_, mut d): Failed) -> Diagnostic {
    if d.is_empty() {
        Diagnostic::internal("a failure without diagnostic")
    } else {
        d.remove(0)
    }
}
