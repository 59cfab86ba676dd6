//! Finding templates: the search path, lookup by slug or name, listing with
//! shadowing, and inheritance resolution.
//!
//! The search order is: each `--templates DIR` (in the order given), each
//! directory of `CWS_TEMPLATES_PATH` (`:`-separated), `$CWS_HOME/templates`,
//! then the bundled templates. Every `*.yaml` / `*.yml` file directly in a
//! directory is a template (files are read in name order; subdirectories
//! are not searched). The first template with a given slug wins; later ones
//! with the same slug are *shadowed* (still listed, marked as such).
//!
//! Each file is read with a limit of [`MAX_TEMPLATE_BYTES`](crate::MAX_TEMPLATE_BYTES); a
//! file over it, or a `*.yaml` entry that is not a regular file (a directory, a FIFO, a
//! device), is never read: it is listed as broken ([`TemplateError::Refused`]) and the other
//! templates are served as usual.
//!
//! A `--templates` directory that does not exist is an error (it was asked
//! for explicitly); missing `CWS_TEMPLATES_PATH` or `$CWS_HOME/templates`
//! directories are skipped silently. Nothing is cached: each call reads the
//! directories afresh, so edits show up immediately.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::TemplateError;
use crate::doc::{Doc, finish};
use crate::issue::Issue;
use crate::locate::Seg;
use crate::model::{AmiStrategy, Template};
use cws_util::suggest::close_matches;

/// Where a template was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum Origin {
    /// A directory given with `--templates`.
    Flag(PathBuf),
    /// A directory from `CWS_TEMPLATES_PATH`.
    Env(PathBuf),
    /// `$CWS_HOME/templates`.
    Home(PathBuf),
    /// Compiled into the binary.
    Bundled,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(p) => write!(f, "--templates {}", p.display()),
            Origin::Env(p) => write!(f, "CWS_TEMPLATES_PATH {}", p.display()),
            Origin::Home(_) => f.write_str("$CWS_HOME/templates"),
            Origin::Bundled => f.write_str("bundled"),
        }
    }
}

/// The directories searched for templates, highest priority first. The
/// bundled templates are always searched last and are not listed here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPath {
    /// Each directory and why it is on the path.
    pub dirs: Vec<(PathBuf, Origin)>,
}

impl SearchPath {
    /// Builds the path from the `--templates` flags, the value of
    /// `CWS_TEMPLATES_PATH` (`:`-separated; empty entries ignored) and the
    /// cws home directory (its `templates` subdirectory is searched).
    pub fn new(flag_dirs: &[PathBuf], env_value: Option<&str>, cws_home: Option<&Path>) -> Self {
        let mut dirs: Vec<(PathBuf, Origin)> = flag_dirs
            .iter()
            .map(|d| (d.clone(), Origin::Flag(d.clone())))
            .collect();
        if let Some(env) = env_value {
            dirs.extend(
                env.split(':')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| (PathBuf::from(s), Origin::Env(PathBuf::from(s)))),
            );
        }
        if let Some(home) = cws_home {
            let dir = home.join("templates");
            dirs.push((dir.clone(), Origin::Home(dir)));
        }
        SearchPath { dirs }
    }

    /// Human-readable list of where lookups go, in order, ending with
    /// `bundled` (used in "not found" messages).
    pub fn describe(&self) -> Vec<String> {
        self.dirs
            .iter()
            .map(|(_, o)| o.to_string())
            .chain(std::iter::once(Origin::Bundled.to_string()))
            .collect()
    }
}

/// A template found on the search path, with inheritance already merged.
#[derive(Debug, Clone)]
pub struct LoadedTemplate {
    /// The merged, validated template.
    pub template: Template,
    /// Where its file was found.
    pub origin: Origin,
    /// The file, for templates that live in a directory (`None` if bundled).
    pub file: Option<PathBuf>,
}

/// One row of [`TemplateStore::list`].
///
/// A file that could not be loaded still gets a row, so one broken file
/// does not hide the rest: its `error` holds the full message (with file,
/// line and column), `slug` is the file's `slug:` if it could be read (else
/// the file stem), and the other fields are best-effort (`version` empty,
/// `has_ami_config` false).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateEntry {
    /// The template's slug.
    pub slug: String,
    /// The display name.
    pub name: String,
    /// The version (`MAJOR.MINOR.PATCH`).
    pub version: String,
    /// The description, if any.
    pub description: Option<String>,
    /// The category, if any.
    pub category: Option<String>,
    /// Where it was found.
    pub origin: Origin,
    /// Its file (`None` if bundled).
    pub file: Option<PathBuf>,
    /// True when it has an `ami_config` (false for script templates).
    pub has_ami_config: bool,
    /// Its AMI strategy ([`Template::strategy`]).
    pub strategy: AmiStrategy,
    /// When an earlier template on the search path has the same slug, that
    /// template's origin: this one is never used by [`TemplateStore::get`].
    pub shadowed_by: Option<Origin>,
    /// Why the template could not be loaded, if it could not.
    pub error: Option<String>,
}

/// One template file (or bundled template) on the search path.
struct Candidate {
    origin: Origin,
    file: Option<PathBuf>,
    /// The file stem or bundled slug, used to attribute broken files.
    stem: String,
    parsed: Result<Arc<Doc>, TemplateError>,
    /// For a broken file: the `slug` and `name` its text declares, when it is YAML enough to
    /// tell (so a request for that slug names the broken file rather than finding another).
    declared: Vec<String>,
}

/// The `slug` and `name` a template text declares, lowercased, read leniently.
fn declared_names(text: &str) -> Vec<String> {
    let Ok(serde_norway::Value::Mapping(m)) = serde_norway::from_str::<serde_norway::Value>(text)
    else {
        return Vec::new();
    };
    ["slug", "name"]
        .iter()
        .filter_map(|k| m.get(*k).and_then(|v| v.as_str()))
        .map(|s| s.trim().to_lowercase())
        .collect()
}

/// Finds, lists and validates templates along a [`SearchPath`].
#[derive(Debug, Clone, Default)]
pub struct TemplateStore {
    path: SearchPath,
}

/// Longest inheritance chain accepted (a guard, far beyond real use).
const MAX_INHERITANCE_DEPTH: usize = 32;

impl TemplateStore {
    /// A store over `path` (plus the bundled templates).
    pub fn new(path: SearchPath) -> Self {
        TemplateStore { path }
    }

    /// A store with only the bundled templates.
    pub fn bundled_only() -> Self {
        TemplateStore::default()
    }

    /// The search path in use.
    pub fn search_path(&self) -> &SearchPath {
        &self.path
    }

    /// Every template file in search order, then the bundled templates.
    /// Errors only when a `--templates` directory cannot be read.
    fn candidates(&self) -> Result<Vec<Candidate>, TemplateError> {
        let mut out = Vec::new();
        for (dir, origin) in &self.path.dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(_) if !matches!(origin, Origin::Flag(_)) => continue,
                Err(source) => {
                    return Err(TemplateError::Io {
                        path: dir.clone(),
                        source,
                    });
                }
            };
            // Every `*.yaml` / `*.yml` entry is a candidate, whatever its type: one that is
            // not a regular file (or is too large) is listed as broken, not skipped silently.
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|ext| ext == "yaml" || ext == "yml")
                })
                .collect();
            files.sort();
            for file in files {
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let text = read(&file);
                let declared = match &text {
                    Ok(t) => declared_names(t),
                    Err(_) => Vec::new(),
                };
                let parsed = text
                    .and_then(|text| Doc::parse(&text, &file.display().to_string()))
                    .map(Arc::new);
                let declared = if parsed.is_err() {
                    declared
                } else {
                    Vec::new()
                };
                out.push(Candidate {
                    origin: origin.clone(),
                    file: Some(file),
                    stem,
                    parsed,
                    declared,
                });
            }
        }
        for (b, cached) in crate::bundled().iter().zip(bundled_docs()) {
            out.push(Candidate {
                origin: Origin::Bundled,
                file: None,
                stem: b.slug.to_string(),
                declared: Vec::new(),
                parsed: match cached {
                    Some(doc) => Ok(Arc::clone(doc)),
                    None => Doc::parse(b.source, &b.label()).map(Arc::new),
                },
            });
        }
        Ok(out)
    }

    /// Finds a template by slug (exact, case-insensitive) or, failing that,
    /// by display name (case-insensitive); the first match in search order
    /// wins. Its `inherits` chain is merged and the result validated.
    ///
    /// A file that fails to parse is skipped, unless its file name, or the
    /// `slug` or `name` its text declares, matches `name` — then its error is
    /// returned, since it is most likely the template that was meant (a
    /// broken override never lets the template it meant to replace be served
    /// in silence).
    pub fn get(&self, name_or_slug: &str) -> Result<LoadedTemplate, TemplateError> {
        let mut cands = self.candidates()?;
        let wanted = name_or_slug.trim().to_lowercase();
        let by_slug = |c: &Candidate| c.parsed.as_ref().is_ok_and(|d| d.slug() == wanted);
        let by_name = |c: &Candidate| {
            c.parsed
                .as_ref()
                .is_ok_and(|d| d.name().to_lowercase() == wanted)
        };
        // A broken file is meant when its name, or the slug or name it declares, is the one
        // asked for: its errors are the answer, not another template of that slug.
        let broken = |c: &Candidate| {
            c.parsed.is_err() && (c.stem.to_lowercase() == wanted || c.declared.contains(&wanted))
        };
        let hit = cands
            .iter()
            .position(|c| by_slug(c) || broken(c))
            .or_else(|| cands.iter().position(by_name));
        let Some(index) = hit else {
            let mut names: Vec<&str> = cands
                .iter()
                .filter_map(|c| c.parsed.as_ref().ok().map(|d| d.slug()))
                .collect();
            names.sort_unstable();
            names.dedup();
            return Err(TemplateError::NotFound {
                name: name_or_slug.to_string(),
                suggestions: close_matches(name_or_slug, names, 3),
                searched: self.path.describe(),
            });
        };
        if let Err(e) = &mut cands[index].parsed {
            // Take the error out; the placeholder is dropped with `cands`.
            let placeholder = TemplateError::InheritanceCycle {
                cycle: Vec::new(),
                files: Vec::new(),
            };
            return Err(std::mem::replace(e, placeholder));
        }
        let template = resolve(&cands, index)?;
        let c = &cands[index];
        Ok(LoadedTemplate {
            template,
            origin: c.origin.clone(),
            file: c.file.clone(),
        })
    }

    /// Every template on the search path and every bundled one, in search
    /// order. Templates shadowed by an earlier one with the same slug are
    /// included with `shadowed_by` set. Broken files are included with
    /// `error` set (see [`TemplateEntry`]); the call itself fails only when
    /// a `--templates` directory cannot be read.
    pub fn list(&self) -> Result<Vec<TemplateEntry>, TemplateError> {
        let cands = self.candidates()?;
        let mut entries: Vec<TemplateEntry> = Vec::with_capacity(cands.len());
        let mut seen: Vec<(String, Origin)> = Vec::new();
        for (i, c) in cands.iter().enumerate() {
            let mut entry = match &c.parsed {
                Err(e) => TemplateEntry {
                    slug: c.stem.clone(),
                    name: String::new(),
                    version: String::new(),
                    description: None,
                    category: None,
                    origin: c.origin.clone(),
                    file: c.file.clone(),
                    has_ami_config: false,
                    strategy: AmiStrategy::default(),
                    shadowed_by: None,
                    error: Some(e.to_string()),
                },
                Ok(doc) => match resolve(&cands, i) {
                    Ok(t) => TemplateEntry {
                        slug: t.slug.clone(),
                        name: t.name.clone(),
                        version: t.version.to_string(),
                        description: t.description.clone(),
                        category: t.category.clone(),
                        origin: c.origin.clone(),
                        file: c.file.clone(),
                        has_ami_config: t.ami_config.is_some(),
                        strategy: t.strategy(),
                        shadowed_by: None,
                        error: None,
                    },
                    Err(e) => TemplateEntry {
                        slug: doc.slug().to_string(),
                        name: doc.name().to_string(),
                        version: String::new(),
                        description: None,
                        category: None,
                        origin: c.origin.clone(),
                        file: c.file.clone(),
                        has_ami_config: doc.value.contains_key("ami_config"),
                        strategy: AmiStrategy::default(),
                        shadowed_by: None,
                        error: Some(e.to_string()),
                    },
                },
            };
            if c.parsed.is_ok() {
                match seen.iter().find(|(s, _)| *s == entry.slug) {
                    Some((_, first)) => entry.shadowed_by = Some(first.clone()),
                    None => seen.push((entry.slug.clone(), c.origin.clone())),
                }
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Parses and validates the file at `path`, resolving its `inherits`
    /// through this store. When the file itself is on the search path it
    /// takes its own place there (so a file that overrides a template of
    /// the same slug and inherits from it resolves to the next one down).
    pub fn validate_file(&self, path: &Path) -> Result<Template, TemplateError> {
        let text = read(path)?;
        let doc = Doc::parse(&text, &path.display().to_string())?;
        let mut cands = self.candidates()?;
        let canonical = std::fs::canonicalize(path).ok();
        let own = cands.iter().position(|c| {
            canonical.is_some()
                && c.file.as_ref().and_then(|f| std::fs::canonicalize(f).ok()) == canonical
        });
        let index = match own {
            Some(i) => {
                cands[i].parsed = Ok(Arc::new(doc));
                i
            }
            None => {
                cands.insert(
                    0,
                    Candidate {
                        origin: Origin::Flag(path.to_path_buf()),
                        file: Some(path.to_path_buf()),
                        stem: String::new(),
                        parsed: Ok(Arc::new(doc)),
                        declared: Vec::new(),
                    },
                );
                0
            }
        };
        resolve(&cands, index)
    }
}

/// The bundled templates, parsed once per process (they never change).
/// A template that fails to parse (impossible: a test loads them all) is
/// `None` and re-parsed on use so its error surfaces.
fn bundled_docs() -> &'static [Option<Arc<Doc>>] {
    static DOCS: OnceLock<Vec<Option<Arc<Doc>>>> = OnceLock::new();
    DOCS.get_or_init(|| {
        crate::bundled()
            .iter()
            .map(|b| Doc::parse(b.source, &b.label()).ok().map(Arc::new))
            .collect()
    })
}

/// Reads a template file whole, refusing one over [`crate::MAX_TEMPLATE_BYTES`] or one that
/// is not a regular file ([`TemplateError::Refused`]).
pub(crate) fn read(path: &Path) -> Result<String, TemplateError> {
    Ok(cws_util::fs::read_text_bounded(
        path,
        crate::MAX_TEMPLATE_BYTES,
    )?)
}

/// Merges and validates candidate `index` with its ancestors.
///
/// A parent is found by slug like [`TemplateStore::get`] does, with one
/// twist: a template that inherits its *own* slug means "the template I
/// shadow", so the search starts after it. Loops are reported as
/// [`TemplateError::InheritanceCycle`].
fn resolve(cands: &[Candidate], index: usize) -> Result<Template, TemplateError> {
    let doc_at = |i: usize| cands[i].parsed.as_deref().ok();
    let mut chain: Vec<usize> = vec![index];
    while let Some(&last) = chain.last() {
        let Some(doc) = doc_at(last) else { break };
        let Some(parent) = doc.inherits() else { break };
        let start = if parent == doc.slug() { last + 1 } else { 0 };
        let found = (start..cands.len()).find(|&j| doc_at(j).is_some_and(|d| d.slug() == parent));
        let Some(j) = found else {
            if parent == doc.slug() {
                return Err(TemplateError::InheritanceCycle {
                    cycle: vec![parent.to_string(), parent.to_string()],
                    files: cands[last]
                        .file
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect(),
                });
            }
            if let Some(broken) = cands.iter().find(|c| c.parsed.is_err() && c.stem == parent)
                && let Err(e) = &broken.parsed
            {
                return Err(doc.error(
                    Issue::value(
                        &[Seg::Key("inherits".into())],
                        format!("parent template `{parent}` could not be loaded"),
                    )
                    .hint(e.to_string()),
                ));
            }
            let slugs: Vec<&str> = cands
                .iter()
                .filter_map(|c| c.parsed.as_deref().ok())
                .map(Doc::slug)
                .collect();
            // Located like any other issue, so it points at the `inherits` value.
            let at = doc.error(Issue::value(&[Seg::Key("inherits".into())], ""));
            let (file, line, column) = at.location().unwrap_or(("<template>", 1, 1));
            return Err(TemplateError::UnknownParent {
                file: file.to_string(),
                line,
                column,
                parent: parent.to_string(),
                suggestions: close_matches(parent, slugs, 3),
            });
        };
        if let Some(pos) = chain.iter().position(|&c| c == j) {
            let mut cycle: Vec<String> = chain[pos..]
                .iter()
                .filter_map(|&c| doc_at(c).map(|d| d.slug().to_string()))
                .collect();
            cycle.push(parent.to_string());
            let files = chain[pos..]
                .iter()
                .filter_map(|&c| cands[c].file.as_ref())
                .map(|f| f.display().to_string())
                .collect();
            return Err(TemplateError::InheritanceCycle { cycle, files });
        }
        if chain.len() >= MAX_INHERITANCE_DEPTH {
            return Err(doc.error(
                Issue::value(
                    &[Seg::Key("inherits".into())],
                    format!("inheritance is more than {MAX_INHERITANCE_DEPTH} levels deep"),
                )
                .hint("flatten the template hierarchy"),
            ));
        }
        chain.push(j);
    }
    let docs: Vec<&Doc> = chain.iter().filter_map(|&i| doc_at(i)).collect();
    finish(&docs)
}
