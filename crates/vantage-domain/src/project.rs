//! Projects inside a tenant (Krafter's org → project), stream `projects-<tenant>`: a tenant's scans,
//! schedules and webhooks each belong to one project, and an API key may be limited to some projects.
//!
//! Every tenant has the project `default` without creating it; data recorded before projects
//! existed belongs to it (the upcasters of `ScanRequested` v4, `ScheduleCreated` v4, `WebhookCreated`
//! v2 and `ApiKeyIssued` v3 say so). The registry is one aggregate so that ids are unique per tenant.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::{Aggregate, DomainError};

/// Longest project name, in characters.
pub const MAX_PROJECT_NAME_CHARS: usize = 100;
/// Most projects one tenant may have (besides `default`).
pub const MAX_PROJECTS: usize = 1000;

/// A project id: 1–63 characters of `a-z`, `0-9` and `-`, starting with a letter or digit.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectId(String);

impl ProjectId {
    /// The project every tenant has, and all data recorded before projects existed belongs to.
    pub fn default_project() -> Self {
        Self("default".to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == "default"
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if crate::text::is_slug(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "project",
                "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ProjectId {
    fn default() -> Self {
        Self::default_project()
    }
}

impl TryFrom<String> for ProjectId {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ProjectId> for String {
    fn from(project: ProjectId) -> Self {
        project.0
    }
}

/// A set of ids answers for a project named in a read model or a query without parsing it again.
impl std::borrow::Borrow<str> for ProjectId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which projects an API key may see: all of its tenant's, or only some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProjectAccess {
    #[default]
    All,
    Only(BTreeSet<ProjectId>),
}

impl ProjectAccess {
    /// As an `ApiKeyIssued` event records it: `None` for all projects.
    pub fn from_recorded(projects: Option<BTreeSet<ProjectId>>) -> Self {
        projects.map_or(Self::All, Self::Only)
    }

    /// Whether the project named `project` may be seen.
    pub fn allows(&self, project: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(projects) => projects.contains(project),
        }
    }

    /// The projects when limited, `None` for all.
    pub fn limited_to(&self) -> Option<&BTreeSet<ProjectId>> {
        match self {
            Self::All => None,
            Self::Only(projects) => Some(projects),
        }
    }
}

domain_events! {
    /// Everything that can happen to a tenant's projects.
    pub enum ProjectEvent {
        ProjectCreated = 1,
        ProjectDeleted = 1,
    }
}

/// A project was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectCreated {
    pub project: ProjectId,
    pub name: String,
}

/// A project was deleted: nothing new can be put in it; what it held stays in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectDeleted {
    pub project: ProjectId,
}

/// What can be asked of a tenant's projects.
#[derive(Debug, Clone, PartialEq)]
pub enum ProjectCommand {
    Create { project: ProjectId, name: String },
    Delete { project: ProjectId },
}

/// The folded projects of one tenant (`default` is implicit and never listed here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projects {
    /// Live projects by id, with their names.
    pub projects: BTreeMap<ProjectId, String>,
    /// Ids of deleted projects: never used again, so old data is not mistaken for a new project's.
    pub deleted: BTreeSet<ProjectId>,
}

impl Projects {
    /// Whether `project` exists now (`default` always does).
    pub fn exists(&self, project: &ProjectId) -> bool {
        project.is_default() || self.projects.contains_key(project)
    }
}

impl Aggregate for Projects {
    type Command = ProjectCommand;
    type Event = ProjectEvent;

    fn handle(&self, command: ProjectCommand) -> Result<Vec<ProjectEvent>, DomainError> {
        let event: ProjectEvent = match command {
            ProjectCommand::Create { project, name } => {
                if self.exists(&project) || self.deleted.contains(&project) {
                    return Err(DomainError::AlreadyExists("project"));
                }
                if self.projects.len() >= MAX_PROJECTS {
                    return Err(DomainError::invalid(
                        "project",
                        format!("a tenant has at most {MAX_PROJECTS} projects"),
                    ));
                }
                let name = name.trim().to_owned();
                if name.is_empty() || name.chars().count() > MAX_PROJECT_NAME_CHARS {
                    return Err(DomainError::invalid(
                        "name",
                        format!("must be 1-{MAX_PROJECT_NAME_CHARS} characters"),
                    ));
                }
                crate::text::plain("name", &name, false)?;
                ProjectCreated { project, name }.into()
            }
            ProjectCommand::Delete { project } => {
                if project.is_default() {
                    return Err(DomainError::invalid(
                        "project",
                        "the default project cannot be deleted",
                    ));
                }
                if !self.projects.contains_key(&project) {
                    return Err(DomainError::NotFound("project"));
                }
                ProjectDeleted { project }.into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &ProjectEvent) {
        match event {
            ProjectEvent::ProjectCreated(created) => {
                self.projects
                    .insert(created.project.clone(), created.name.clone());
            }
            ProjectEvent::ProjectDeleted(deleted) => {
                self.projects.remove(&deleted.project);
                self.deleted.insert(deleted.project.clone());
            }
        }
    }
}
