//! Blocks of the docs that tests run as they are written: the fenced block
//! (```sql, ```sh) that follows a marker line such as `<!-- role: base -->`.

/// The fenced block of language `lang` that follows `marker` in `doc`
/// (a path under docs/).
pub fn block(doc: &str, marker: &str, lang: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/docs/{doc}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("docs/{doc}: {e}"));
    let from = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in docs/{doc}"));
    let rest = &text[from..];
    let fence = format!("```{lang}\n");
    let start = rest
        .find(&fence)
        .unwrap_or_else(|| panic!("no {lang} block after {marker:?}"))
        + fence.len();
    let end = start + rest[start..].find("```").unwrap();
    rest[start..end].to_owned()
}

/// A SQL block of docs/OPERATIONS.md.
pub fn operations_sql(marker: &str) -> String {
    block("OPERATIONS.md", marker, "sql")
}
