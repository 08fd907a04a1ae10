//! The standard library: `.mlx` modules embedded in the binary (`use std.nn`).

pub const MODULES: &[(&str, &str)] = &[("std.nn", include_str!("../stdlib/nn.mlx"))];

/// The text of a stdlib module.
pub fn source(module: &str) -> Option<&'static str> {
    MODULES.iter().find(|(m, _)| *m == module).map(|(_, t)| *t)
}

/// The stdlib module that declares model `name`, if any.
pub fn defines(name: &str) -> Option<&'static str> {
    MODULES.iter().find_map(|(m, text)| {
        text.lines()
            .filter_map(|l| l.strip_prefix("model "))
            .any(|rest| {
                rest.strip_prefix(name)
                    .is_some_and(|r| r.starts_with('(') || r.starts_with(' '))
            })
            .then_some(*m)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn knows_where_layers_live() {
        assert_eq!(super::defines("dense"), Some("std.nn"));
        assert_eq!(super::defines("lstm"), Some("std.nn"));
        assert_eq!(super::defines("dens"), None);
        assert!(super::source("std.nn").is_some());
    }
}
