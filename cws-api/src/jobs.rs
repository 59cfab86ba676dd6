//! Long operations (image creation, copies) run as jobs: the request answers `202` with the
//! job's id, and `GET /api/v1/jobs/{id}` tells its state, progress and result.
//!
//! Jobs live in the replica that runs them (a job is work in progress, not registry data);
//! what they make is recorded where the CLI records it (`$CWS_HOME/pending.json` while in
//! flight, the cloud's tags after), so nothing is lost when a replica stops.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorDetail};
use crate::extract::Path;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Working.
    Running,
    /// Done; `result` holds what it made.
    Succeeded,
    /// Stopped; `error` says why.
    Failed,
}

/// A long operation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// `create`, `create-multi` or `copy-region`.
    pub kind: String,
    /// Where it is.
    pub state: JobState,
    /// What happened so far (the lifecycle's progress events, newest last, at most 50).
    #[schema(value_type = Vec<Object>)]
    pub progress: VecDeque<serde_json::Value>,
    /// The result (the CLI's `--json` document for the same command), once succeeded.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<ErrorDetail>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The token that started it (only it, or an admin, may read the job).
    #[serde(skip)]
    pub owner: String,
}

/// The jobs this replica runs or ran (the newest 1000 are kept).
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    jobs: Mutex<BTreeMap<String, Job>>,
}

const KEPT: usize = 1000;
const PROGRESS_KEPT: usize = 50;

impl Jobs {
    fn start(&self, kind: &str, owner: &str) -> String {
        let id = random_id();
        let job = Job {
            id: id.clone(),
            kind: kind.into(),
            state: JobState::Running,
            progress: VecDeque::new(),
            result: None,
            error: None,
            started_at: Utc::now(),
            finished_at: None,
            owner: owner.into(),
        };
        if let Ok(mut j) = self.jobs.lock() {
            if j.len() >= KEPT {
                let oldest = j
                    .values()
                    .filter(|x| x.state != JobState::Running)
                    .min_by_key(|x| x.started_at)
                    .map(|x| x.id.clone());
                if let Some(o) = oldest {
                    j.remove(&o);
                }
            }
            j.insert(id.clone(), job);
        }
        id
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Ok(mut j) = self.jobs.lock()
            && let Some(job) = j.get_mut(id)
        {
            f(job);
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.jobs.lock().ok().and_then(|j| j.get(id).cloned())
    }
}

fn random_id() -> String {
    let mut b = [0u8; 12];
    if getrandom::fill(&mut b).is_err() {
        // Unique within the process is enough for a job id.
        let n = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        b[..8].copy_from_slice(&n.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Progress events into a job.
struct JobProgress {
    state: Arc<AppState>,
    id: String,
}

impl cws_lifecycle::Progress for JobProgress {
    fn event(&self, event: &cws_lifecycle::ProgressEvent) {
        let v = serde_json::to_value(event).unwrap_or_default();
        self.state.jobs.update(&self.id, |j| {
            if j.progress.len() >= PROGRESS_KEPT {
                j.progress.pop_front();
            }
            j.progress.push_back(v);
        });
    }
}

/// Starts `work` as a job owned by `caller`; returns its id at once.
pub(crate) fn spawn<F, Fut>(state: &Arc<AppState>, caller: &Caller, kind: &str, work: F) -> String
where
    F: FnOnce(Arc<dyn cws_lifecycle::Progress>) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>> + Send + 'static,
{
    let owner = caller
        .token
        .as_ref()
        .map(|t| t.id.clone())
        .unwrap_or_default();
    let id = state.jobs.start(kind, &owner);
    let progress = Arc::new(JobProgress {
        state: state.clone(),
        id: id.clone(),
    });
    let fut = work(progress);
    let state = state.clone();
    let job = id.clone();
    tokio::spawn(async move {
        let out = fut.await;
        state.jobs.update(&job, |j| {
            j.finished_at = Some(Utc::now());
            match out {
                Ok(v) => {
                    j.state = JobState::Succeeded;
                    j.result = Some(v);
                }
                Err(e) => {
                    j.state = JobState::Failed;
                    j.error = Some(ErrorDetail {
                        code: e.code,
                        message: e.message,
                        registry_error: None,
                    });
                }
            }
        });
    });
    id
}

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/jobs/{id}", get(job))
}

/// A job's state, progress and result (the token that started it, or an admin).
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = Job), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn job(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Job>> {
    let actor = caller.require(cws_registry::Scope::Read)?;
    match state.jobs.get(&id) {
        Some(j) if actor.admin || caller.token.as_ref().is_some_and(|t| t.id == j.owner) => {
            Ok(axum::Json(j))
        }
        _ => Err(ApiError::not_found(format!(
            "no job `{}` of yours on this server",
            id.escape_debug()
        ))),
    }
}
