//! rollout-guard finds the Argo Rollouts background-analysis Inconclusive trap.
//!
//! The flow is the same offline and at admission:
//! 1. read a Rollout / AnalysisTemplate / ClusterAnalysisTemplate into the partial views of
//!    [`model`];
//! 2. resolve the templates it references through a [`templates::TemplateStore`] (files for
//!    `check`, an in-memory cache for `serve`);
//! 3. run the [`rules`], which return [`finding::Finding`]s and never errors;
//! 4. report them (`check`) or turn them into an admission answer and guard patches (`serve`).

pub mod admin;
pub mod cli;
pub mod conn;
pub mod duration;
pub mod finding;
pub mod guards;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod review;
pub mod server;
pub mod tls;
pub mod version;
