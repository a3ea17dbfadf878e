//! The HTTP surface: overlay pages and their SSE streams, the JSON API, theme assets and the
//! dashboard, as small warp filters joined here with one rejection handler.

pub mod access;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod chat_feed;
pub mod chat_protocol;
pub mod fanout;
pub mod pages;
pub mod replay;
pub mod reply;
pub mod sessions;
pub mod settings;
pub mod sockets;
pub mod sse;
pub mod state;
pub mod viewer;
pub mod webhook;
pub mod widgets;

use std::sync::Arc;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

pub use access::Peer;
pub use state::State;

/// Every route.
pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    alerts::routes(state.clone())
        .or(widgets::routes(state.clone()))
        .unify()
        .or(settings::routes(state.clone()))
        .unify()
        .or(replay::routes(state.clone()))
        .unify()
        .or(pages::routes(state.clone()))
        .unify()
        .or(api::routes(state.clone()))
        .unify()
        .or(auth::routes(state.clone()))
        .unify()
        .or(viewer::routes(state.clone()))
        .unify()
        .or(webhook::route(state))
        .unify()
        .recover(reply::recover)
        .unify()
        .boxed()
}
