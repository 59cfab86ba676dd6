//! The bundled templates: they load, validate, and carry the exact AMI ids
//! the simulated cloud seeds.

use std::collections::BTreeMap;

use cws_template::{
    AmiStrategy, Architecture, CWS_PUBLISHER_ACCOUNT, FallbackStrategy, PackageManager, Template,
    TemplateStore, bundled, parse_str,
};

fn load(slug: &str) -> Template {
    let b = bundled()
        .iter()
        .find(|b| b.slug == slug)
        .unwrap_or_else(|| panic!("no bundled template {slug}"));
    parse_str(b.source, &b.label()).unwrap_or_else(|e| panic!("{e}"))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_bundled_template_loads_and_matches_its_slug() {
    let slugs: Vec<&str> = bundled().iter().map(|b| b.slug).collect();
    assert_eq!(
        slugs,
        [
            "python-ml",
            "r-research",
            "bioinformatics",
            "gis-research",
            "python-research"
        ]
    );
    for b in bundled() {
        let t = parse_str(b.source, &b.label()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.slug, b.slug);
        assert_eq!(
            b.source.lines().next(),
            Some("# yaml-language-server: $schema=../../schema/template.schema.json"),
            "{}",
            b.slug
        );
        assert!(t.inherits.is_none(), "bundled templates are complete");
        assert!(t.instance_defaults.ports.contains(&22), "{}", b.slug);
        assert!(t.instance_type_for(Architecture::X86_64).is_some());
        assert!(t.instance_type_for(Architecture::Arm64).is_some());
        assert!(t.description.is_some() && t.category.is_some());
        // Every store serves them.
        let loaded = TemplateStore::bundled_only().get(b.slug).expect("get");
        assert_eq!(loaded.template, t);
    }
}

#[test]
fn python_ml_ids_are_fixed() {
    let t = load("python-ml");
    assert_eq!(t.base, "ubuntu-24.04");
    assert_eq!(t.package_manager, Some(PackageManager::Conda));
    let c = t.ami_config.as_ref().expect("ami_config");
    assert_eq!(c.strategy, AmiStrategy::AmiPreferred);
    assert_eq!(
        c.ami_mappings,
        map(&[
            ("us-east-1", "ami-0c7d3e9a1b2f4a501"),
            ("us-west-2", "ami-04e1f9a7c3b2d6e52"),
            ("eu-west-1", "ami-0f3a8b6c2d9e1a753"),
            ("ap-southeast-1", "ami-09b5d2e4f7a3c1b84"),
        ])
    );
    let s = c.ami_search.as_ref().expect("ami_search");
    assert_eq!(s.owners, ["self", CWS_PUBLISHER_ACCOUNT]);
    assert_eq!(s.name_pattern.as_deref(), Some("cws-python-ml-*"));
    assert_eq!(s.required_tags, map(&[("cws:template", "python-ml")]));
    assert_eq!(c.preferred_architecture, Some(Architecture::X86_64));
    assert_eq!(c.effective_fallback(), FallbackStrategy::ScriptProvisioning);
    assert_eq!(
        t.instance_type_for(Architecture::X86_64),
        Some("m6i.xlarge")
    );
    assert_eq!(t.instance_type_for(Architecture::Arm64), Some("m7g.xlarge"));
    let (system, conda, pip, spack) = t.package_counts();
    assert!((9..=12).contains(&system) && (7..=10).contains(&conda));
    assert!((5..=8).contains(&pip) && spack == 0);
    assert!(t.instance_defaults.ports.contains(&8888));
}

#[test]
fn r_research_ids_are_fixed() {
    let t = load("r-research");
    let c = t.ami_config.as_ref().expect("ami_config");
    assert_eq!(c.strategy, AmiStrategy::AmiPreferred);
    assert_eq!(
        c.ami_mappings,
        map(&[
            ("us-east-1", "ami-0d8e2f4a6b1c3e905"),
            ("eu-west-1", "ami-06a9c1e3b5d7f2a16"),
        ])
    );
    let s = c.ami_search.as_ref().expect("ami_search");
    assert_eq!(s.owners, ["self", CWS_PUBLISHER_ACCOUNT]);
    assert_eq!(s.name_pattern.as_deref(), Some("cws-r-research-*"));
    assert_eq!(s.required_tags, map(&[("cws:template", "r-research")]));
    assert_eq!(c.preferred_architecture, Some(Architecture::X86_64));
    assert!(t.instance_defaults.ports.contains(&8787));
}

#[test]
fn bioinformatics_is_search_only() {
    let t = load("bioinformatics");
    let c = t.ami_config.as_ref().expect("ami_config");
    assert!(c.ami_mappings.is_empty());
    assert!(c.marketplace.is_none());
    let s = c.ami_search.as_ref().expect("ami_search");
    assert_eq!(s.owners, ["self", CWS_PUBLISHER_ACCOUNT]);
    assert_eq!(s.name_pattern.as_deref(), Some("cws-bioinformatics-*"));
    assert_eq!(s.architectures, [Architecture::X86_64, Architecture::Arm64]);
    assert_eq!(s.required_tags, map(&[("cws:template", "bioinformatics")]));
    for tool in [
        "samtools",
        "bcftools",
        "bwa",
        "star",
        "salmon",
        "fastqc",
        "multiqc",
        "snakemake",
        "nextflow",
    ] {
        assert!(
            t.packages
                .conda
                .iter()
                .any(|p| p == &format!("bioconda::{tool}")),
            "{tool}"
        );
    }
}

#[test]
fn gis_research_is_marketplace_only() {
    let t = load("gis-research");
    let c = t.ami_config.as_ref().expect("ami_config");
    assert!(c.ami_mappings.is_empty() && c.ami_search.is_none());
    let m = c.marketplace.as_ref().expect("marketplace");
    assert_eq!(m.product_code.as_deref(), Some("8fj3k2ls9dnq4x7wz1mcv5bpr"));
    assert_eq!(m.product_id.as_deref(), Some("prod-gis4k7q2x9m3a"));
    assert_eq!(m.title.as_deref(), Some("GIS Research Workstation"));
    assert_eq!(
        c.fallback_strategy,
        Some(FallbackStrategy::ScriptProvisioning)
    );
    for pkg in ["qgis", "gdal-bin", "postgis", "grass"] {
        assert!(t.packages.system.iter().any(|p| p == pkg), "{pkg}");
    }
}

#[test]
fn python_research_is_a_script_template() {
    let t = load("python-research");
    assert!(t.ami_config.is_none());
    assert!(t.is_script_only());
    assert_eq!(t.strategy(), AmiStrategy::AmiFallback);
    for pkg in [
        "jupyterlab",
        "pandas",
        "numpy",
        "scipy",
        "matplotlib",
        "seaborn",
        "statsmodels",
    ] {
        assert!(t.packages.pip.iter().any(|p| p == pkg), "{pkg}");
    }
}

#[test]
fn provisioning_scripts_are_deterministic_bash() {
    for b in bundled() {
        let t = load(b.slug);
        let script = t.provisioning_script();
        assert_eq!(script, t.provisioning_script(), "deterministic");
        assert!(script.starts_with("#!/bin/bash\n"), "{}", b.slug);
        assert!(script.contains("\nset -euxo pipefail\n"));
        assert!(script.contains(&format!("template {} version {}", t.slug, t.version)));
        if let Some(post) = &t.post_install {
            assert!(script.contains(post.as_str()), "post_install verbatim");
        }
        // Syntax-check with bash when it is available.
        if let Ok(out) = std::process::Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .output()
        {
            assert!(
                out.status.success(),
                "{}: {}",
                b.slug,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn provisioning_script_sections() {
    let ml = load("python-ml").provisioning_script();
    assert!(ml.contains("apt-get install -y --no-install-recommends \\\n  build-essential"));
    assert!(ml.contains("Miniforge3-Linux-$(uname -m).sh"));
    assert!(ml.contains("/opt/conda/bin/conda install -y -c conda-forge \\\n  python=3.12"));
    assert!(ml.contains("/opt/conda/bin/pip install --no-input \\\n  transformers"));
    let bio = load("bioinformatics").provisioning_script();
    assert!(bio.contains("conda install -y -c conda-forge -c bioconda"));
    let research = load("python-research").provisioning_script();
    assert!(research.contains("python3 -m venv /opt/cws/venv"));
    assert!(research.contains("/opt/cws/venv/bin/pip install --no-input \\\n  jupyterlab"));
    assert!(!research.contains("conda"));
}

#[test]
fn readme_example_is_a_valid_template() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```yaml\n").expect("yaml block") + "```yaml\n".len();
    let len = readme[start..].find("```").expect("end of block");
    let t = parse_str(&readme[start..start + len], "README.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.slug, "python-ml");
    assert!(t.ami_config.is_some_and(|c| c.marketplace.is_some()));
}
