//! The components, one file (or folder) each, and [`REGISTRY`]: the one
//! list through which the rest of the code knows them. A component's file
//! provides its name, settings (read from the environment), check, verbose
//! facts and metrics (see [`crate::component`]); adding a component is that
//! file, one line here, and its documentation (`docs/openapi.yaml` and the
//! guides).

use crate::component::Component;
#[cfg(any(test, feature = "test-seams"))]
use crate::component::Enabled;

/// Declares each component's module and lists its `COMPONENT` in
/// [`REGISTRY`], so that one line names a component once.
macro_rules! registry {
    ($($component:ident,)*) => {
        $(pub mod $component;)*

        /// Every component, in the order bodies, logs and metrics list them.
        pub static REGISTRY: &[Component] = &[$($component::COMPONENT),*];
    };
}

// The order is also the order in which the checks' statements enter the
// evaluation's pipeline (the evaluator polls them in this order), and
// Postgres answers a pipeline in order: `tenancy`, whose catalog reading may
// take milliseconds on a large catalog, comes last so that it never holds
// back a public component's answer.
registry! {
    database,
    supabase,
    workers,
    queue,
    runs,
    partitions,
    app,
    live_logs,
    tenancy,
}

/// The registered component called `name`.
pub fn find(name: &str) -> Option<&'static Component> {
    REGISTRY.iter().find(|c| c.name == name)
}

#[cfg(any(test, feature = "test-seams"))]
impl Enabled {
    /// For tests: the registered component called `name`, else a made-up
    /// one that queries nothing (leaked: a test's few bytes).
    pub fn for_test(name: &'static str, critical: bool) -> Self {
        let component = find(name).unwrap_or_else(|| {
            Box::leak(Box::new(Component {
                name,
                enabled_by_default: false,
                critical_by_default: true,
                private: false,
                uses_postgres: false,
                read_settings: |_| {
                    Err(crate::env::ConfigError::new(
                        "HEALTH_COMPONENTS",
                        "a test's component",
                    ))
                },
                figures: &[],
            }))
        });
        Self {
            component,
            critical,
        }
    }
}
