//! The organization's data files: shipped inside the binary, overridable file by file from
//! a config folder (`VORG_CONFIG_DIR`, or the working directory when it holds them).

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
};

/// A file's text and where it came from (a path, or `built-in`).
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub origin: String,
    pub text: Cow<'static, str>,
}

macro_rules! shipped {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../", $path)))),*]
    };
}

/// Every shipped file, by its path relative to the config folder.
const SHIPPED: &[(&str, &str)] = shipped!(
    "governance/constitution.md",
    "governance/policies.yaml",
    "schemas/policies.schema.json",
    "schemas/persona.schema.json",
    "schemas/hiring_plan.schema.json",
    "meetings/templates/standup.md",
    "meetings/templates/brainstorm.md",
    "meetings/templates/allhands.md",
    "personas/ceo_org_v1.json",
    "personas/cto_org_v1.json",
    "personas/eng_backend_v1.json",
    "personas/eng_frontend_v1.json",
    "personas/growth_lead_v1.json",
    "personas/finance_approver_v1.json",
    "personas/legal_counsel_v1.json",
    "personas/security_ciso_v1.json",
);

/// The workflows the original's `/orchestration/*` routes run, shipped from
/// `examples/workflows/` and overridable as `workflows/<file>` in the config folder.
const SHIPPED_WORKFLOWS: &[(&str, &str)] = &[
    (
        "workflows/meeting_cycle.dag.yaml",
        include_str!("../../../examples/workflows/meeting_cycle.dag.yaml"),
    ),
    (
        "workflows/meeting_cycle.graph.yaml",
        include_str!("../../../examples/workflows/meeting_cycle.graph.yaml"),
    ),
    (
        "workflows/brainstorm.crew.yaml",
        include_str!("../../../examples/workflows/brainstorm.crew.yaml"),
    ),
    (
        "workflows/brainstorm.chat.yaml",
        include_str!("../../../examples/workflows/brainstorm.chat.yaml"),
    ),
];

/// The folders whose presence makes a directory a config folder.
const MARKERS: &[&str] = &["governance", "personas", "schemas", "meetings"];

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("VORG_CONFIG_DIR={0} is not a directory")]
    NotADirectory(String),
    #[error("no such file: {0}")]
    Unknown(String),
}

/// Where the organization's files are read from.
#[derive(Debug, Clone, Default)]
pub struct OrgFiles {
    dir: Option<PathBuf>,
}

impl OrgFiles {
    /// Only the shipped files.
    pub fn shipped() -> Self {
        OrgFiles { dir: None }
    }

    /// Files from `dir` where it has them, shipped ones elsewhere.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Result<Self, FilesError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(FilesError::NotADirectory(dir.display().to_string()));
        }
        Ok(OrgFiles { dir: Some(dir) })
    }

    /// `configured` (VORG_CONFIG_DIR) if set; else the working directory when it holds one
    /// of the data folders; else only the shipped files.
    pub fn discover(configured: Option<&Path>) -> Result<Self, FilesError> {
        if let Some(dir) = configured {
            return Self::from_dir(dir);
        }
        let cwd = std::env::current_dir().ok();
        match cwd {
            Some(cwd) if MARKERS.iter().any(|m| cwd.join(m).is_dir()) => Self::from_dir(cwd),
            _ => Ok(Self::shipped()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The file at `name` (e.g. `governance/policies.yaml`).
    pub fn read(&self, name: &str) -> Result<Source, FilesError> {
        if let Some(dir) = &self.dir {
            let path = dir.join(name);
            if path.is_file() {
                return read_path(name, &path);
            }
        }
        SHIPPED
            .iter()
            .chain(SHIPPED_WORKFLOWS)
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Source {
                name: (*n).to_owned(),
                origin: "built-in".to_owned(),
                text: Cow::Borrowed(text),
            })
            .ok_or_else(|| FilesError::Unknown(name.to_owned()))
    }

    /// Every persona file: the shipped ones, overridden by name and extended by the
    /// config folder's `personas/*.json`, in name order.
    pub fn personas(&self) -> Result<Vec<Source>, FilesError> {
        let mut names: Vec<String> = SHIPPED
            .iter()
            .filter(|(n, _)| n.starts_with("personas/"))
            .map(|(n, _)| (*n).to_owned())
            .collect();
        if let Some(dir) = &self.dir {
            let folder = dir.join("personas");
            if folder.is_dir() {
                let entries = std::fs::read_dir(&folder).map_err(|source| FilesError::Read {
                    path: folder.display().to_string(),
                    source,
                })?;
                for entry in entries.flatten() {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if file.ends_with(".json") {
                        names.push(format!("personas/{file}"));
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names.iter().map(|n| self.read(n)).collect()
    }
}

fn read_path(name: &str, path: &Path) -> Result<Source, FilesError> {
    let text = std::fs::read_to_string(path).map_err(|source| FilesError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Source {
        name: name.to_owned(),
        origin: path.display().to_string(),
        text: Cow::Owned(text),
    })
}
