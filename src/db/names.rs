//! SQL names that the checks and `migrate` write into statement text
//! (tables from the settings, the migrating session's schema). Only names
//! of one plain form pass into SQL unquoted, so nothing else can.

use crate::env::ConfigError;

/// `^[a-z_][a-z0-9_]{0,62}$`: an identifier that needs no quotes.
pub fn plain_identifier(part: &str) -> bool {
    (1..=63).contains(&part.len())
        && part
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i > 0 && b.is_ascii_digit()))
}

/// A plain identifier, optionally `schema.`-qualified by another.
pub fn valid_table_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((schema, table)) => plain_identifier(schema) && plain_identifier(table),
        None => plain_identifier(name),
    }
}

/// `name`, the value of `variable`, as a table name; anything else is a
/// configuration error naming the variable.
pub fn check_table_name(variable: &'static str, name: &str) -> Result<(), ConfigError> {
    if valid_table_name(name) {
        return Ok(());
    }
    Err(ConfigError::new(
        variable,
        format!(
            "{name:?} is not a table name (lower-case letters, digits and _, \
             optionally schema-qualified)"
        ),
    ))
}

/// `name`, the value of `variable`, as a schema-qualified table name
/// (`example` shows one); anything else is a configuration error naming
/// the variable.
pub fn check_qualified_table_name(
    variable: &'static str,
    name: &str,
    example: &str,
) -> Result<(), ConfigError> {
    check_table_name(variable, name)?;
    if name.contains('.') {
        return Ok(());
    }
    Err(ConfigError::new(
        variable,
        format!("{name:?} is not schema-qualified (e.g. {example})"),
    ))
}

/// `name`, the value of `variable`, as a plain identifier naming a `what`
/// (a schema, a publication); anything else is a configuration error
/// naming the variable.
pub fn check_identifier(variable: &'static str, name: &str, what: &str) -> Result<(), ConfigError> {
    if plain_identifier(name) {
        return Ok(());
    }
    Err(ConfigError::new(
        variable,
        format!("{name:?} is not a {what} name (lower-case letters, digits and _)"),
    ))
}

/// `name` as an SQL identifier: bare when plain, else double-quoted.
pub fn quote_ident(name: &str) -> String {
    if plain_identifier(name) {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_and_quoting() {
        assert!(valid_table_name("public.workflow_events"));
        assert!(valid_table_name("_x9"));
        for bad in [
            "Workflow_Events",
            "events; drop table x",
            "a.b.c",
            "9events",
            "",
        ] {
            assert!(!valid_table_name(bad), "{bad}");
        }
        assert_eq!(check_table_name("V", "a.b.c").unwrap_err().variable, "V");
        assert_eq!(quote_ident("public"), "public");
        assert_eq!(quote_ident("My \"Schema\""), "\"My \"\"Schema\"\"\"");
    }
}
