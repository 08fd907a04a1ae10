//! The checker's mistakes in datasets, features, configuration values and patterns, as data, and their diagnostics.

use crate::diagnostics::Diagnostic;

#[derive(Debug)]
pub(crate) enum Error {}

impl Error {
    pub(crate) fn diagnostic(self) -> Diagnostic {
        match self {}
    }
}
