//! rollout-guard finds the Argo Rollouts background-analysis Inconclusive trap.
//!
//! The flow is the same offline and at admission:
//! 1. read a Rollout / AnalysisTemplate / ClusterAnalysisTemplate into the partial views of
//!    [`model`];
//! 2. resolve the templates it references through a [`templates::TemplateStore`] (files for
//!    `check`, an in-memory cache kept by a watch for `serve`: [`catalog`], [`cluster`]);
//! 3. run the [`rules`], which return [`finding::Finding`]s and never errors;
//! 4. report them ([`check`]) or turn them into an admission answer and guard patches
//!    ([`admission`]), served over HTTPS by [`server`] with probes and metrics on [`admin`].

pub mod admin;
pub mod admission;
pub mod catalog;
pub mod certs;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod conn;
pub mod duration;
pub mod finding;
pub mod guards;
pub mod input;
pub mod json;
pub mod locate;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod model;
pub mod review;
pub mod rules;
pub mod serve;
pub mod server;
pub mod templates;
pub mod tls;
pub mod version;
