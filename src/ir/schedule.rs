//! Scheduling: one IR function becomes a list of steps for a compiled back end. View ops
//! (reshape, transpose, slice, broadcast) cost nothing: they become strided views of buffers.
//! Chains of elementwise ops fuse into one kernel, a reduction absorbs the elementwise ops that
//! feed it, and a kernel stores every value something else needs (an optimizer's new moments
//! and new weights come out of one pass). Everything else (matrix products, windows, gathers)
//! is a library step. Decisions are made here once, for every compiled back end.

use super::*;
use std::collections::HashMap;

/// A buffer: a function input, a state, or a temporary of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buf {
    Input(usize),
    State(StateId),
    Temp(usize),
}

/// A strided view of a buffer, in elements.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct View {
    pub buf: Buf,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<isize>,
    pub dtype: DType,
}

/// Strides for viewing (`shape`, `strides`) as `target` without copying, if possible.
fn nocopy_strides(shape: &[usize], strides: &[isize], target: &[usize]) -> Option<Vec<isize>> {
    let old: Vec<(usize, isize)> = shape
        .iter()
        .copied()
        .zip(strides.iter().copied())
        .filter(|(d, _)| *d != 1)
        .collect();
    let new_dims: Vec<(usize, usize)> = target
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, d)| *d != 1)
        .collect();
    let mut out = vec![0isize; target.len()];
    let (mut oi, mut ni) = (0usize, 0usize);
    while ni < new_dims.len() && oi < old.len() {
        let (mut nj, mut oj) = (ni + 1, oi + 1);
        let (mut np, mut op) = (new_dims[ni].1, old[oi].0);
        while np != op {
            if np < op {
                np *= new_dims.get(nj)?.1;
                nj += 1;
            } else {
                op *= old.get(oj)?.0;
                oj += 1;
            }
        }
        // The old axes oi..oj must be one contiguous run.
        for k in oi..oj - 1 {
            if old[k].1 != old[k + 1].1 * old[k + 1].0 as isize {
                return None;
            }
        }
        // The new axes ni..nj split that run.
        let mut st = old[oj - 1].1;
        for k in (ni..nj).rev() {
            out[new_dims[k].0] = st;
            st *= new_dims[k].1 as isize;
        }
        ni = nj;
        oi = oj;
    }
    (ni == new_dims.len() && oi == old.len()).then_some(out)
}

pub fn contiguous_strides(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i] as isize;
    }
    s
}

impl View {
    pub fn contiguous(buf: Buf, shape: &[usize], dtype: DType) -> View {
        View {
            buf,
            offset: 0,
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            dtype,
        }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the view covers its elements in row-major order without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.strides
            .iter()
            .zip(contiguous_strides(&self.shape))
            .zip(&self.shape)
            .all(|((s, c), d)| *d == 1 || *s == c)
    }

    /// The same elements with another shape, without copying, when the strides allow it
    /// (NumPy's no-copy reshape: each run of merged or split axes must be contiguous).
    fn reshaped(&self, shape: &[usize]) -> Option<View> {
        if self.is_contiguous() {
            return Some(View {
                buf: self.buf,
                offset: self.offset,
                shape: shape.to_vec(),
                strides: contiguous_strides(shape),
                dtype: self.dtype,
            });
        }
        let strides = nocopy_strides(&self.shape, &self.strides, shape)?;
        Some(View {
            buf: self.buf,
            offset: self.offset,
            shape: shape.to_vec(),
            strides,
            dtype: self.dtype,
        })
    }

    fn transposed(&self, perm: &[usize]) -> View {
        View {
            buf: self.buf,
            offset: self.offset,
            shape: perm.iter().map(|p| self.shape[*p]).collect(),
            strides: perm.iter().map(|p| self.strides[*p]).collect(),
            dtype: self.dtype,
        }
    }

    fn sliced(&self, axis: usize, start: usize, len: usize) -> View {
        let mut v = self.clone();
        v.offset = (v.offset as isize + start as isize * v.strides[axis]) as usize;
        v.shape[axis] = len;
        v
    }

    /// NumPy broadcast to `shape`: new and size-1 axes get stride 0.
    pub fn broadcast_to(&self, shape: &[usize]) -> View {
        let lead = shape.len() - self.shape.len();
        let mut strides = vec![0isize; shape.len()];
        for (i, d) in self.shape.iter().enumerate() {
            strides[lead + i] = if *d == 1 && shape[lead + i] != 1 {
                0
            } else {
                self.strides[i]
            };
        }
        View {
            buf: self.buf,
            offset: self.offset,
            shape: shape.to_vec(),
            strides,
            dtype: self.dtype,
        }
    }
}

/// One operation of a fused kernel, on one element at a time (or a vector of them).
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum KOp {
    /// The element of load `i` at the current position.
    Load(usize),
    Const(u32),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    Select(usize, usize, usize),
}

impl KOp {
    pub fn constant(v: f32) -> KOp {
        KOp::Const(v.to_bits())
    }
}

/// A fused elementwise kernel over an iteration space, or a reduction of one.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub shape: Vec<usize>,
    /// A reduction kernel folds the value of its last store over these axes.
    pub reduce: Option<(ReduceOp, Vec<usize>)>,
    /// Views with the iteration shape (broadcast axes have stride 0).
    pub loads: Vec<View>,
    pub ops: Vec<KOp>,
    /// Where values go: views with the iteration shape (for a reduction, the reduced axes have
    /// stride 0 and the store happens once per output element).
    pub stores: Vec<(View, usize)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Kernel(Kernel),
    /// `out = a @ b` over equal leading (batch) axes.
    MatMul {
        a: View,
        b: View,
        out: View,
    },
    Im2Col {
        x: View,
        out: View,
        kernel: [usize; 2],
        stride: usize,
        padding: usize,
        pad_value: f32,
    },
    Col2Im {
        cols: View,
        out: View,
        kernel: [usize; 2],
        stride: usize,
        padding: usize,
    },
    Gather {
        table: View,
        indices: View,
        out: View,
    },
    ScatterAdd {
        indices: View,
        updates: View,
        out: View,
    },
    Pad {
        x: View,
        out: View,
        axis: usize,
        start: usize,
    },
    Concat {
        xs: Vec<View>,
        out: View,
        axis: usize,
    },
    Random {
        key: u64,
        counter: View,
        out: View,
    },
    OneHot {
        x: View,
        out: View,
        classes: usize,
    },
    Cast {
        x: View,
        out: View,
    },
    /// Element-by-element copy between views of the same shape.
    Copy {
        src: View,
        dst: View,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Temp {
    pub numel: usize,
    pub dtype: DType,
    /// The IR value it holds (for dumps and error origins).
    pub node: ValueId,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Schedule {
    pub steps: Vec<Step>,
    pub temps: Vec<Temp>,
    pub outputs: Vec<(String, View)>,
    /// Number of elementwise IR nodes fused away (for dumps and tests).
    pub fused: usize,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Leaf,
    Elementwise,
    View,
    Reduce,
    Anchor,
}

fn kind(op: &Op) -> Kind {
    match op {
        Op::Input(_) | Op::State(_) => Kind::Leaf,
        Op::Constant(_) | Op::Unary(..) | Op::Binary(..) | Op::Select(..) => Kind::Elementwise,
        Op::Broadcast(_)
        | Op::Reshape(_)
        | Op::Transpose(..)
        | Op::Slice { .. }
        | Op::StopGrad(_) => Kind::View,
        Op::Reduce(..) => Kind::Reduce,
        _ => Kind::Anchor,
    }
}

struct Builder<'f> {
    f: &'f Function,
    consumers: Vec<Vec<ValueId>>,
    /// Group of each fused node: the node whose kernel computes it.
    group: Vec<Option<ValueId>>,
    /// Where materialised values live.
    views: HashMap<ValueId, View>,
    s: Schedule,
}

/// Schedule one function of `p`.
pub fn schedule(p: &Program, f: &Function) -> Schedule {
    let n = f.nodes.len();
    let mut consumers = vec![Vec::new(); n];
    for (i, node) in f.nodes.iter().enumerate() {
        for a in node.op.args() {
            if !consumers[a].contains(&i) {
                consumers[a].push(i);
            }
        }
    }
    let mut b = Builder {
        f,
        consumers,
        group: vec![None; n],
        views: HashMap::new(),
        s: Schedule::default(),
    };
    b.form_groups();
    for i in 0..n {
        b.emit(p, i);
    }
    for (name, v) in &f.outputs {
        let view = b.view(*v);
        b.s.outputs.push((name.clone(), view));
    }
    b.place_updates(f);
    super::passes::concat_in_place(&mut b.s);
    super::passes::merge_kernels(&mut b.s);
    b.s
}

impl Builder<'_> {
    fn is_output(&self, v: ValueId) -> bool {
        self.f.outputs.iter().any(|(_, o)| *o == v) || self.f.updates.iter().any(|(_, u)| *u == v)
    }

    /// Reverse topological order: an elementwise node joins its consumers' group when all its
    /// consumers are in one group with its shape; a reduction starts a group its producers can
    /// join.
    fn form_groups(&mut self) {
        let f = self.f;
        for i in (0..f.nodes.len()).rev() {
            let node = &f.nodes[i];
            match kind(&node.op) {
                Kind::Reduce => self.group[i] = Some(i),
                Kind::Elementwise if node.dtype == DType::F32 => {
                    let cs = &self.consumers[i];
                    let target = cs.first().and_then(|c| self.group[*c]);
                    // Every consumer in one group (a reduction's group is itself) whose
                    // iteration shape is this node's: no recomputation, no broadcast inside.
                    let joins = target.is_some()
                        && cs.iter().all(|c| self.group[*c] == target)
                        && target.is_some_and(|g| self.iteration_shape(g) == node.shape);
                    self.group[i] = if joins { target } else { Some(i) };
                }
                _ => {}
            }
        }
    }

    /// The iteration shape of group `g`: its root's shape, or a reduction's input shape.
    fn iteration_shape(&self, g: ValueId) -> Vec<usize> {
        match &self.f.nodes[g].op {
            Op::Reduce(_, x, _) => self.f.nodes[*x].shape.clone(),
            _ => self.f.nodes[g].shape.clone(),
        }
    }

    fn temp(&mut self, v: ValueId) -> View {
        let n = &self.f.nodes[v];
        self.s.temps.push(Temp {
            numel: n.numel(),
            dtype: n.dtype,
            node: v,
        });
        View::contiguous(Buf::Temp(self.s.temps.len() - 1), &n.shape, n.dtype)
    }

    /// The view of value `v` (materialising it if it must be).
    fn view(&mut self, v: ValueId) -> View {
        if let Some(view) = self.views.get(&v) {
            return view.clone();
        }
        let node = &self.f.nodes[v];
        let view = match &node.op {
            Op::Broadcast(x) => self.view(*x).broadcast_to(&node.shape),
            Op::Transpose(x, perm) => self.view(*x).transposed(perm),
            Op::Slice { x, axis, start } => self.view(*x).sliced(*axis, *start, node.shape[*axis]),
            Op::StopGrad(x) => self.view(*x),
            Op::Reshape(x) => {
                let src = self.view(*x);
                match src.reshaped(&node.shape) {
                    Some(r) => r,
                    None => {
                        // Not contiguous: copy it out first.
                        let dst = self.temp(*x);
                        let dst = View {
                            shape: src.shape.clone(),
                            ..dst
                        };
                        let dst = View::contiguous(dst.buf, &src.shape, src.dtype);
                        self.s.steps.push(Step::Copy {
                            src,
                            dst: dst.clone(),
                        });
                        dst.reshaped(&node.shape).unwrap_or(dst)
                    }
                }
            }
            Op::Constant(c) => {
                // A constant something must read from memory: fill a buffer once.
                let out = self.temp(v);
                self.s.steps.push(Step::Kernel(Kernel {
                    shape: node.shape.clone(),
                    reduce: None,
                    loads: Vec::new(),
                    ops: vec![KOp::constant(*c)],
                    stores: vec![(out.clone(), 0)],
                }));
                out
            }
            _ => {
                // Computed by a step that has not run yet: cannot happen in topological order.
                self.temp(v)
            }
        };
        self.views.insert(v, view.clone());
        view
    }

    /// Emit the step that computes node `i`, if it is the root of its work.
    fn emit(&mut self, p: &Program, i: ValueId) {
        let node = &self.f.nodes[i];
        match kind(&node.op) {
            Kind::Leaf => {
                let buf = match node.op {
                    Op::Input(k) => Buf::Input(k),
                    Op::State(s) => Buf::State(s),
                    _ => return,
                };
                let _ = p;
                self.views
                    .insert(i, View::contiguous(buf, &node.shape, node.dtype));
            }
            Kind::View => {}
            Kind::Elementwise | Kind::Reduce => {
                // A constant is inlined where it is used; it gets a buffer only when something
                // must read it from memory (see `view`).
                if node.dtype != DType::F32
                    || matches!(node.op, Op::Constant(_)) && !self.is_output(i)
                {
                    return;
                }
                if self.group[i] == Some(i) {
                    self.kernel(i);
                }
            }
            Kind::Anchor => self.anchor(i),
        }
    }

    /// The fused kernel of group `g`.
    fn kernel(&mut self, g: ValueId) {
        let f = self.f;
        let members: Vec<ValueId> = (0..=g).filter(|m| self.group[*m] == Some(g)).collect();
        let shape = self.iteration_shape(g);
        let mut k = Kernel {
            shape: shape.clone(),
            reduce: None,
            loads: Vec::new(),
            ops: Vec::new(),
            stores: Vec::new(),
        };
        let mut at: HashMap<ValueId, usize> = HashMap::new();
        let mut load_of: HashMap<View, usize> = HashMap::new();
        for &m in &members {
            let node = &f.nodes[m];
            let op = match &node.op {
                Op::Constant(c) => KOp::constant(*c),
                Op::Unary(u, x) => {
                    KOp::Unary(*u, self.operand(&mut k, &mut at, &mut load_of, *x, &shape))
                }
                Op::Binary(b, x, y) => {
                    let a = self.operand(&mut k, &mut at, &mut load_of, *x, &shape);
                    let c = self.operand(&mut k, &mut at, &mut load_of, *y, &shape);
                    KOp::Binary(*b, a, c)
                }
                Op::Select(c, x, y) => {
                    let c = self.operand(&mut k, &mut at, &mut load_of, *c, &shape);
                    let a = self.operand(&mut k, &mut at, &mut load_of, *x, &shape);
                    let b = self.operand(&mut k, &mut at, &mut load_of, *y, &shape);
                    KOp::Select(c, a, b)
                }
                Op::Reduce(r, x, axes) => {
                    let v = self.operand(&mut k, &mut at, &mut load_of, *x, &shape);
                    k.reduce = Some((*r, axes.clone()));
                    let out = self.temp(m);
                    self.views.insert(m, out.clone());
                    // Output strides over the iteration space: 0 on the reduced axes.
                    let mut strides = vec![0isize; shape.len()];
                    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
                    let cs = contiguous_strides(&node.shape);
                    for (j, a) in kept.iter().enumerate() {
                        strides[*a] = cs[j];
                    }
                    k.stores.push((
                        View {
                            buf: out.buf,
                            offset: 0,
                            shape: shape.clone(),
                            strides,
                            dtype: DType::F32,
                        },
                        v,
                    ));
                    continue;
                }
                _ => continue,
            };
            k.ops.push(op);
            let idx = k.ops.len() - 1;
            at.insert(m, idx);
            if m == g
                || self.is_output(m)
                || self.consumers[m].iter().any(|c| self.group[*c] != Some(g))
            {
                let out = self.temp(m);
                self.views.insert(m, out.clone());
                k.stores.push((out, idx));
            }
        }
        self.s.fused += members.len().saturating_sub(k.stores.len());
        self.s.steps.push(Step::Kernel(k));
    }

    /// The kernel op holding operand `x` at the iteration shape: a member's op, an inline
    /// constant, or a load of a materialised view.
    fn operand(
        &mut self,
        k: &mut Kernel,
        at: &mut HashMap<ValueId, usize>,
        load_of: &mut HashMap<View, usize>,
        x: ValueId,
        shape: &[usize],
    ) -> usize {
        if let Some(i) = at.get(&x) {
            return *i;
        }
        // Constants, even behind views, are inline.
        let mut root = x;
        while let Op::Broadcast(y) | Op::Reshape(y) | Op::StopGrad(y) | Op::Transpose(y, _) =
            &self.f.nodes[root].op
        {
            root = *y;
        }
        if let Op::Constant(c) = self.f.nodes[root].op {
            k.ops.push(KOp::constant(c));
            return k.ops.len() - 1;
        }
        let v = self.view(x);
        let v = if v.shape.as_slice() == shape {
            v
        } else {
            v.broadcast_to(shape)
        };
        let li = match load_of.get(&v) {
            Some(i) => *i,
            None => {
                k.loads.push(v.clone());
                load_of.insert(v, k.loads.len() - 1);
                k.loads.len() - 1
            }
        };
        k.ops.push(KOp::Load(li));
        k.ops.len() - 1
    }

    fn anchor(&mut self, i: ValueId) {
        let node = self.f.nodes[i].clone();
        let step = match &node.op {
            Op::MatMul(a, b) => {
                let (a, b) = (self.view(*a), self.view(*b));
                let out = self.temp(i);
                Step::MatMul {
                    a,
                    b,
                    out: out.clone(),
                }
            }
            Op::Im2Col {
                x,
                kernel,
                stride,
                padding,
                pad_value,
            } => Step::Im2Col {
                x: self.view(*x),
                out: self.temp(i),
                kernel: *kernel,
                stride: *stride,
                padding: *padding,
                pad_value: *pad_value,
            },
            Op::Col2Im {
                cols,
                kernel,
                stride,
                padding,
            } => Step::Col2Im {
                cols: self.view(*cols),
                out: self.temp(i),
                kernel: *kernel,
                stride: *stride,
                padding: *padding,
            },
            Op::Gather { table, indices } => Step::Gather {
                table: self.view(*table),
                indices: self.view(*indices),
                out: self.temp(i),
            },
            Op::ScatterAdd { indices, updates } => Step::ScatterAdd {
                indices: self.view(*indices),
                updates: self.view(*updates),
                out: self.temp(i),
            },
            Op::Pad { x, axis, start } => Step::Pad {
                x: self.view(*x),
                out: self.temp(i),
                axis: *axis,
                start: *start,
            },
            Op::Concat(xs, axis) => {
                let xs = xs.iter().map(|x| self.view(*x)).collect();
                Step::Concat {
                    xs,
                    out: self.temp(i),
                    axis: *axis,
                }
            }
            Op::Random { key, counter } => Step::Random {
                key: *key,
                counter: self.view(*counter),
                out: self.temp(i),
            },
            Op::OneHot { x, classes } => Step::OneHot {
                x: self.view(*x),
                out: self.temp(i),
                classes: *classes,
            },
            Op::Cast(x) => Step::Cast {
                x: self.view(*x),
                out: self.temp(i),
            },
            // Elementwise ops on I32 values (broadcasts are views; anything else is rare):
            // copy through the generic path.
            Op::Unary(..) | Op::Binary(..) | Op::Select(..) | Op::Constant(_) => return,
            _ => return,
        };
        let out = match &step {
            Step::MatMul { out, .. }
            | Step::Im2Col { out, .. }
            | Step::Col2Im { out, .. }
            | Step::Gather { out, .. }
            | Step::ScatterAdd { out, .. }
            | Step::Pad { out, .. }
            | Step::Concat { out, .. }
            | Step::Random { out, .. }
            | Step::OneHot { out, .. }
            | Step::Cast { out, .. } => out.clone(),
            _ => return,
        };
        self.views.insert(i, out);
        self.s.steps.push(step);
    }

    /// Every state update goes into the state's buffer: in place, when the kernel that computes
    /// it reads the old value only element by element and nothing reads the old value after
    /// it; otherwise by a copy at the end.
    fn place_updates(&mut self, f: &Function) {
        for (state, v) in &f.updates {
            let view = self.view(*v);
            let dst = View::contiguous(Buf::State(*state), &f.nodes[*v].shape, DType::F32);
            if let Buf::Temp(t) = view.buf
                && view.is_contiguous()
                && let Some(step) = self.producer(t)
                && self.in_place_ok(step, *state, &view)
            {
                self.retarget(t, Buf::State(*state));
                continue;
            }
            self.s.steps.push(Step::Copy { src: view, dst });
        }
    }

    /// The step that writes temp `t`.
    fn producer(&self, t: usize) -> Option<usize> {
        self.s.steps.iter().position(|s| match s {
            Step::Kernel(k) => k.stores.iter().any(|(v, _)| v.buf == Buf::Temp(t)),
            _ => false,
        })
    }

    fn in_place_ok(&self, step: usize, state: StateId, out: &View) -> bool {
        let reads_state = |v: &View| v.buf == Buf::State(state);
        let _ = out;
        // No later step reads the old value (later readers of the new value read the state,
        // which then holds it).
        if self.s.steps[step + 1..]
            .iter()
            .any(|s| step_reads(s).iter().any(|v| reads_state(v)))
        {
            return false;
        }
        match &self.s.steps[step] {
            Step::Kernel(k) => {
                k.reduce.is_none()
                    && k.loads.iter().filter(|v| reads_state(v)).all(|v| {
                        v.offset == 0
                            && v.strides == contiguous_strides(&k.shape)
                            && v.shape == k.shape
                    })
            }
            _ => false,
        }
    }

    /// Make every write and read of temp `t` use `buf` instead.
    fn retarget(&mut self, t: usize, buf: Buf) {
        let fix = |v: &mut View| {
            if v.buf == Buf::Temp(t) {
                v.buf = buf;
            }
        };
        for s in &mut self.s.steps {
            for v in step_views_mut(s) {
                fix(v);
            }
        }
        for (_, v) in &mut self.s.outputs {
            fix(v);
        }
    }
}

/// The views a step reads.
pub fn step_reads(s: &Step) -> Vec<&View> {
    match s {
        Step::Kernel(k) => k.loads.iter().collect(),
        Step::MatMul { a, b, .. } => vec![a, b],
        Step::Im2Col { x, .. }
        | Step::Pad { x, .. }
        | Step::OneHot { x, .. }
        | Step::Cast { x, .. } => vec![x],
        Step::Col2Im { cols, .. } => vec![cols],
        Step::Gather { table, indices, .. } => vec![table, indices],
        Step::ScatterAdd {
            indices, updates, ..
        } => vec![indices, updates],
        Step::Concat { xs, .. } => xs.iter().collect(),
        Step::Random { counter, .. } => vec![counter],
        Step::Copy { src, .. } => vec![src],
    }
}

/// The views a step writes.
pub fn step_writes(s: &Step) -> Vec<&View> {
    match s {
        Step::Kernel(k) => k.stores.iter().map(|(v, _)| v).collect(),
        Step::MatMul { out, .. }
        | Step::Im2Col { out, .. }
        | Step::Col2Im { out, .. }
        | Step::Gather { out, .. }
        | Step::ScatterAdd { out, .. }
        | Step::Pad { out, .. }
        | Step::Concat { out, .. }
        | Step::Random { out, .. }
        | Step::OneHot { out, .. }
        | Step::Cast { out, .. } => vec![out],
        Step::Copy { dst, .. } => vec![dst],
    }
}

pub(crate) fn step_views_mut(s: &mut Step) -> Vec<&mut View> {
    match s {
        Step::Kernel(k) => k
            .loads
            .iter_mut()
            .chain(k.stores.iter_mut().map(|(v, _)| v))
            .collect(),
        Step::MatMul { a, b, out } => vec![a, b, out],
        Step::Im2Col { x, out, .. }
        | Step::Pad { x, out, .. }
        | Step::OneHot { x, out, .. }
        | Step::Cast { x, out } => vec![x, out],
        Step::Col2Im { cols, out, .. } => vec![cols, out],
        Step::Gather {
            table,
            indices,
            out,
        } => vec![table, indices, out],
        Step::ScatterAdd {
            indices,
            updates,
            out,
        } => vec![indices, updates, out],
        Step::Concat { xs, out, .. } => xs.iter_mut().chain(std::iter::once(out)).collect(),
        Step::Random { counter, out, .. } => vec![counter, out],
        Step::Copy { src, dst } => vec![src, dst],
    }
}

/// A step's name for dumps.
pub fn step_name(s: &Step) -> &'static str {
    match s {
        Step::Kernel(k) if k.reduce.is_some() => "reduce",
        Step::Kernel(_) => "kernel",
        Step::MatMul { .. } => "matmul",
        Step::Im2Col { .. } => "im2col",
        Step::Col2Im { .. } => "col2im",
        Step::Gather { .. } => "gather",
        Step::ScatterAdd { .. } => "scatter_add",
        Step::Pad { .. } => "pad",
        Step::Concat { .. } => "concat",
        Step::Random { .. } => "random",
        Step::OneHot { .. } => "one_hot",
        Step::Cast { .. } => "cast",
        Step::Copy { .. } => "copy",
    }
}

fn view_text(v: &View) -> String {
    let buf = match v.buf {
        Buf::Input(i) => format!("in{i}"),
        Buf::State(i) => format!("s{i}"),
        Buf::Temp(i) => format!("t{i}"),
    };
    let at = if v.offset == 0 {
        String::new()
    } else {
        format!("+{}", v.offset)
    };
    let layout = if v.is_contiguous() {
        String::new()
    } else {
        format!(" strides {:?}", v.strides)
    };
    format!("{buf}{at}{:?}{layout}", v.shape)
}

/// One line describing a step: what it is, its shapes, and for kernels their size
/// (`mlx ir --stage schedule`, `MLX_PROFILE`).
pub fn describe(s: &Step) -> String {
    let list = |vs: &[&View]| {
        vs.iter()
            .map(|v| view_text(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match s {
        Step::Kernel(k) => {
            let what = match &k.reduce {
                Some((op, axes)) => format!("reduce {op:?} over {axes:?} of {:?}", k.shape),
                None => format!("kernel {:?}", k.shape),
            };
            let loads: Vec<&View> = k.loads.iter().collect();
            let stores: Vec<&View> = k.stores.iter().map(|(v, _)| v).collect();
            format!(
                "{what}: {} ops; loads {}; stores {}",
                k.ops.len(),
                list(&loads),
                list(&stores)
            )
        }
        other => {
            let reads = step_reads(other);
            let writes = step_writes(other);
            format!("{} {} -> {}", step_name(other), list(&reads), list(&writes))
        }
    }
}
