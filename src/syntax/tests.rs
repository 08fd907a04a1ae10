//! Parser tests: the examples round-trip through the printer, precedence, recovery.

use super::*;
use crate::source::FileId;

fn examples() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("examples dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "mlx") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).expect("read"),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn every_example_parses_and_prints_back_to_itself() {
    for (name, text) in examples() {
        let (m, diags) = parse(FileId(0), &text);
        assert!(diags.is_empty(), "{name}: {diags:?}");
        let printed = print::module(&m);
        let (m2, diags2) = parse(FileId(0), &printed);
        assert!(
            diags2.is_empty(),
            "{name} reprinted:\n{printed}\n{diags2:?}"
        );
        assert_eq!(
            printed,
            print::module(&m2),
            "{name}: printing is not stable"
        );
        assert_eq!(m.items.len(), m2.items.len());
    }
}

#[test]
fn precedence_is_pipe_then_comparison_then_sums_then_products() {
    let src = "const a = x + y * z |> f(1) |> g\nconst b = -a.b @ c - d / e\nconst c = (a + b) * c";
    let (m, d) = parse(FileId(0), src);
    assert!(d.is_empty(), "{d:?}");
    let printed = print::module(&m);
    assert_eq!(
        printed,
        "const a = x + y * z |> f(1) |> g\n\nconst b = -a.b @ c - d / e\n\nconst c = (a + b) * c\n"
    );
    let ast::Item::Const(c) = &m.items[0] else {
        panic!()
    };
    assert!(matches!(c.value.kind, ast::ExprKind::Pipe { .. }));
}

#[test]
fn numbers_strings_and_ranges() {
    let src = r#"const n = 60_000
const f = 1e-3
const s = "a\"b\\c"
model m(rate: Float in [0.0, 1.0) = 0.5)(x: Float[..., In]) -> Float[..., In] { x * rate }"#;
    let (m, d) = parse(FileId(0), src);
    assert!(d.is_empty(), "{d:?}");
    let ast::Item::Const(n) = &m.items[0] else {
        panic!()
    };
    assert_eq!(n.value.kind, ast::ExprKind::Int(60000));
    let ast::Item::Const(f) = &m.items[1] else {
        panic!()
    };
    assert_eq!(f.value.kind, ast::ExprKind::Float(1e-3));
    let ast::Item::Const(s) = &m.items[2] else {
        panic!()
    };
    assert_eq!(s.value.kind, ast::ExprKind::Str("a\"b\\c".into()));
    let ast::Item::Model(model) = &m.items[3] else {
        panic!()
    };
    let r = model.hyper.as_ref().unwrap()[0].range.as_ref().unwrap();
    assert!(r.lo_inclusive && !r.hi_inclusive);
}

#[test]
fn every_broken_item_is_reported_and_good_items_survive() {
    let src = "model a(x: Float[B, 2]) -> Float[B, 2] {\n  x |>\n}\n\nmodel b(x: Float[B, 2]) { x }\n\ntrain t {\n  epochs = \n}\n";
    let (m, d) = parse(FileId(0), src);
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(m.items.len(), 1);
    assert_eq!(m.broken.len(), 2);
    assert_eq!(m.broken[0].0.as_deref(), Some("a"));
    assert_eq!(m.broken[1].0.as_deref(), Some("t"));
}

#[test]
fn an_unclosed_block_names_the_block_and_where_it_opened() {
    let src = "model a(x: Float[B, 2]) -> Float[B, 2] {\n  x\n\ntrain t { epochs = 1 }\n";
    let (_, d) = parse(FileId(0), src);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, "mlx::syntax::unclosed");
    assert_eq!(
        d[0].message,
        "expected `}` to close the `model` block opened here"
    );
    assert_eq!(d[0].labels.len(), 2);
}
