//! Templates compiled into the binary, so `cws` works from a fresh install
//! with no template directory at all.

/// A template shipped inside the crate (`cws-template/templates/*.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundledTemplate {
    /// The template's slug (equal to its `slug:` field; a test checks).
    pub slug: &'static str,
    /// The YAML source, exactly as in the repository.
    pub source: &'static str,
}

impl BundledTemplate {
    /// The label bundled templates carry in error messages and listings,
    /// e.g. `bundled/python-ml.yaml`.
    pub fn label(&self) -> String {
        format!("bundled/{}.yaml", self.slug)
    }
}

static BUNDLED: [BundledTemplate; 5] = [
    BundledTemplate {
        slug: "python-ml",
        source: include_str!("../templates/python-ml.yaml"),
    },
    BundledTemplate {
        slug: "r-research",
        source: include_str!("../templates/r-research.yaml"),
    },
    BundledTemplate {
        slug: "bioinformatics",
        source: include_str!("../templates/bioinformatics.yaml"),
    },
    BundledTemplate {
        slug: "gis-research",
        source: include_str!("../templates/gis-research.yaml"),
    },
    BundledTemplate {
        slug: "python-research",
        source: include_str!("../templates/python-research.yaml"),
    },
];

/// The bundled templates, in a stable order. Parse one with
/// [`crate::parse_str`] (they are complete: none uses `inherits`).
pub fn bundled() -> &'static [BundledTemplate] {
    &BUNDLED
}
