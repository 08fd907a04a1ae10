//! The checker's mistakes in trains of several models, objectives and sweeps, as data, and their diagnostics.

use crate::diagnostics::Diagnostic;

#[derive(Debug)]
pub(crate) enum Error {}

impl Error {
    pub(crate) fn diagnostic(self) -> Diagnostic {
        match self {}
    }
}
