//! The components, one file each, and [`REGISTRY`]: the one list through
//! which the rest of the code knows them. A file provides its component's
//! name, settings (read from the environment), check, verbose facts and
//! metrics (see [`crate::component`]); adding a component is that file plus
//! one line here.

pub mod database;
pub mod queue;
pub mod supabase;
pub mod workers;

use crate::component::Definition;

/// Every component, in the order bodies, logs and metrics list them.
pub static REGISTRY: &[Definition] = &[
    database::DEFINITION,
    supabase::DEFINITION,
    workers::DEFINITION,
    queue::DEFINITION,
];

/// The registered component called `name`.
pub fn find(name: &str) -> Option<&'static Definition> {
    REGISTRY.iter().find(|d| d.name == name)
}
