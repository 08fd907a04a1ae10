//! Symbolic tensor dimensions: integer polynomials over named symbols (`B`, `4*hidden + 1`),
//! with floor division kept as an opaque atom when it does not divide exactly. Two dims are
//! equal when their normal forms are equal.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Atom {
    Sym(String),
    /// `floor(a / b)` that could not be simplified.
    FloorDiv(Box<Dim>, Box<Dim>),
}

/// A dimension size in normal form: a map from monomials (sorted atom lists, with repetition)
/// to non-zero integer coefficients. The constant term has the empty monomial.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Dim {
    terms: BTreeMap<Vec<Atom>, i64>,
}

impl Dim {
    pub fn constant(n: i64) -> Dim {
        let mut terms = BTreeMap::new();
        if n != 0 {
            terms.insert(Vec::new(), n);
        }
        Dim { terms }
    }

    pub fn sym(name: &str) -> Dim {
        Dim::atom(Atom::Sym(name.to_string()))
    }

    fn atom(a: Atom) -> Dim {
        let mut terms = BTreeMap::new();
        terms.insert(vec![a], 1);
        Dim { terms }
    }

    pub fn as_const(&self) -> Option<i64> {
        match self.terms.len() {
            0 => Some(0),
            1 => self.terms.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// The symbol, if this dim is exactly one symbol.
    pub fn as_sym(&self) -> Option<&str> {
        if self.terms.len() != 1 {
            return None;
        }
        let (m, c) = self.terms.iter().next()?;
        match (m.as_slice(), c) {
            ([Atom::Sym(s)], 1) => Some(s),
            _ => None,
        }
    }

    pub fn is_const(&self) -> bool {
        self.as_const().is_some()
    }

    /// Every symbol this dim mentions.
    pub fn symbols(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.terms.keys() {
            for a in m {
                match a {
                    Atom::Sym(s) => out.push(s.clone()),
                    Atom::FloorDiv(a, b) => {
                        out.extend(a.symbols());
                        out.extend(b.symbols());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// True when arithmetic on this dim overflowed 64 bits somewhere: coefficients saturate at
    /// `i64::MAX` (or its negation), and a dim that large is reported (`mlx::shape::overflow`)
    /// rather than trusted.
    pub fn overflowed(&self) -> bool {
        self.terms.iter().any(|(m, c)| {
            *c == i64::MAX
                || *c <= -i64::MAX
                || m.iter().any(|a| match a {
                    Atom::Sym(_) => false,
                    Atom::FloorDiv(x, y) => x.overflowed() || y.overflowed(),
                })
        })
    }

    pub fn add(&self, o: &Dim) -> Dim {
        let mut terms = self.terms.clone();
        for (m, c) in &o.terms {
            let e = terms.entry(m.clone()).or_insert(0);
            *e = e.saturating_add(*c);
            if *e == 0 {
                terms.remove(m);
            }
        }
        Dim { terms }
    }

    pub fn neg(&self) -> Dim {
        Dim {
            terms: self
                .terms
                .iter()
                .map(|(m, c)| (m.clone(), c.saturating_neg()))
                .collect(),
        }
    }

    pub fn sub(&self, o: &Dim) -> Dim {
        self.add(&o.neg())
    }

    pub fn mul(&self, o: &Dim) -> Dim {
        let mut out = Dim::default();
        for (m1, c1) in &self.terms {
            for (m2, c2) in &o.terms {
                let mut m: Vec<Atom> = m1.iter().chain(m2.iter()).cloned().collect();
                m.sort();
                let mut t = BTreeMap::new();
                t.insert(m, c1.saturating_mul(*c2));
                out = out.add(&Dim { terms: t });
            }
        }
        out
    }

    /// Floor division. `None` when dividing by zero.
    pub fn floor_div(&self, o: &Dim) -> Option<Dim> {
        if let Some(d) = o.as_const() {
            if d == 0 {
                return None;
            }
            if let Some(n) = self.as_const() {
                // `i64::MIN / -1` overflows: saturate, which `overflowed` then reports.
                return Some(Dim::constant(
                    match (n.checked_div_euclid(d), n.checked_rem_euclid(d)) {
                        (Some(q), Some(r)) => q - i64::from(d < 0 && r != 0),
                        _ => i64::MAX,
                    },
                ));
            }
            if self
                .terms
                .values()
                .all(|c| c.checked_rem(d).is_some_and(|r| r == 0))
            {
                return Some(Dim {
                    terms: self
                        .terms
                        .iter()
                        .map(|(m, c)| (m.clone(), c.checked_div(d).unwrap_or(i64::MAX)))
                        .collect(),
                });
            }
        } else if o.terms.len() == 1 {
            // Division by a monomial that divides every term exactly.
            let (om, oc) = o.terms.iter().next()?;
            let mut terms = BTreeMap::new();
            let mut exact = true;
            for (m, c) in &self.terms {
                match remove_submultiset(m, om) {
                    Some(rest) if c.checked_rem(*oc) == Some(0) => {
                        terms.insert(rest, c.checked_div(*oc).unwrap_or(i64::MAX));
                    }
                    _ => {
                        exact = false;
                        break;
                    }
                }
            }
            if exact {
                return Some(Dim { terms });
            }
        }
        Some(Dim::atom(Atom::FloorDiv(
            Box::new(self.clone()),
            Box::new(o.clone()),
        )))
    }

    /// Replace symbols by the dims `f` gives, and simplify.
    pub fn subst(&self, f: &dyn Fn(&str) -> Option<Dim>) -> Dim {
        let mut out = Dim::default();
        for (m, c) in &self.terms {
            let mut term = Dim::constant(*c);
            for a in m {
                let v = match a {
                    Atom::Sym(s) => f(s).unwrap_or_else(|| Dim::sym(s)),
                    Atom::FloorDiv(x, y) => {
                        let (x, y) = (x.subst(f), y.subst(f));
                        x.floor_div(&y)
                            .unwrap_or_else(|| Dim::atom(Atom::FloorDiv(Box::new(x), Box::new(y))))
                    }
                };
                term = term.mul(&v);
            }
            out = out.add(&term);
        }
        out
    }

    /// True when this dim is certainly non-zero for every positive value of its symbols:
    /// a non-zero constant, or all coefficients of one sign over plain symbols.
    pub fn certainly_nonzero(&self) -> bool {
        if let Some(c) = self.as_const() {
            return c != 0;
        }
        let plain = self
            .terms
            .keys()
            .all(|m| m.iter().all(|a| matches!(a, Atom::Sym(_))));
        plain && (self.terms.values().all(|c| *c > 0) || self.terms.values().all(|c| *c < 0))
    }

    /// Evaluate with every symbol given, or `None` if one is missing.
    pub fn eval(&self, f: &dyn Fn(&str) -> Option<i64>) -> Option<i64> {
        self.subst(&|s| f(s).map(Dim::constant)).as_const()
    }
}

fn remove_submultiset(m: &[Atom], sub: &[Atom]) -> Option<Vec<Atom>> {
    let mut rest: Vec<Atom> = m.to_vec();
    for a in sub {
        let i = rest.iter().position(|x| x == a)?;
        rest.remove(i);
    }
    Some(rest)
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("0");
        }
        // Symbolic terms first, constant last: `4*hidden + 1`.
        let mut terms: Vec<(&Vec<Atom>, &i64)> = self.terms.iter().collect();
        terms.sort_by_key(|(m, _)| m.is_empty());
        for (i, (m, c)) in terms.iter().enumerate() {
            let c = **c;
            let (sign, mag) = if c < 0 {
                ("-", c.unsigned_abs())
            } else {
                ("+", c.unsigned_abs())
            };
            if i == 0 {
                if sign == "-" {
                    f.write_str("-")?;
                }
            } else {
                write!(f, " {sign} ")?;
            }
            if m.is_empty() {
                write!(f, "{mag}")?;
                continue;
            }
            if mag != 1 {
                write!(f, "{mag}*")?;
            }
            for (j, a) in m.iter().enumerate() {
                if j > 0 {
                    f.write_str("*")?;
                }
                match a {
                    Atom::Sym(s) => f.write_str(s)?,
                    Atom::FloorDiv(x, y) => {
                        let xs = x.to_string();
                        let ys = y.to_string();
                        let wrap = |s: String, d: &Dim| {
                            if d.terms.len() > 1 || s.contains('*') {
                                format!("({s})")
                            } else {
                                s
                            }
                        };
                        write!(f, "{} / {}", wrap(xs, x), wrap(ys, y))?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A shape written out for messages: `[B, 6, 28, 28]`.
pub fn show_shape(dims: &[Dim]) -> String {
    let d: Vec<String> = dims.iter().map(ToString::to_string).collect();
    format!("[{}]", d.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: i64) -> Dim {
        Dim::constant(n)
    }

    #[test]
    fn arithmetic_normalises() {
        let h = Dim::sym("hidden");
        let four_h = c(4).mul(&h);
        assert_eq!(four_h.to_string(), "4*hidden");
        assert_eq!(four_h.add(&c(1)).sub(&c(1)), four_h);
        assert_eq!(h.add(&h), c(2).mul(&h));
        assert_eq!(h.sub(&h), c(0));
        assert_eq!(c(7).floor_div(&c(2)), Some(c(3)));
        assert_eq!(c(-7).floor_div(&c(2)), Some(c(-4)));
        assert_eq!(c(1).floor_div(&c(0)), None);
        assert_eq!(four_h.floor_div(&c(2)), Some(c(2).mul(&h)));
        let b = Dim::sym("B");
        assert_eq!(b.mul(&c(400)).floor_div(&b), Some(c(400)));
    }

    #[test]
    fn conv_output_arithmetic_stays_symbolic_then_evaluates() {
        let h = Dim::sym("H");
        // (H + 2*2 - 5) / 1 + 1 == H
        let out = h
            .add(&c(4))
            .sub(&c(5))
            .floor_div(&c(1))
            .map(|d| d.add(&c(1)));
        assert_eq!(out, Some(h.clone()));
        // (H - 5) / 2 + 1 is opaque until H is known.
        let o2 = h.sub(&c(5)).floor_div(&c(2)).map(|d| d.add(&c(1)));
        let o2 = o2.unwrap_or_default();
        assert_eq!(o2.to_string(), "(H - 5) / 2 + 1");
        assert_eq!(o2.subst(&|s| (s == "H").then(|| c(28))), c(12));
        assert!(!o2.certainly_nonzero());
        assert!(c(3).mul(&Dim::sym("B")).certainly_nonzero());
    }

    #[test]
    fn overflow_saturates_and_is_detected() {
        let big = c(1 << 62);
        assert!(!big.overflowed());
        assert!(big.mul(&c(4)).overflowed());
        assert!(big.add(&big).overflowed());
        assert!(
            big.mul(&Dim::sym("B"))
                .add(&big.mul(&Dim::sym("B")))
                .overflowed()
        );
        assert!(
            c(i64::MIN)
                .floor_div(&c(-1))
                .is_some_and(|d| d.overflowed())
        );
        assert_eq!(c(i64::MIN).to_string(), "-9223372036854775808");
        assert!(!c(-7).mul(&c(3)).overflowed());
    }
}
