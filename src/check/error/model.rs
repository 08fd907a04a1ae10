//! The checker's mistakes in models, expressions and builtins, as data, and their diagnostics.

use crate::diagnostics::Diagnostic;

#[derive(Debug)]
pub(crate) enum Error {}

impl Error {
    pub(crate) fn diagnostic(self) -> Diagnostic {
        match self {}
    }
}
