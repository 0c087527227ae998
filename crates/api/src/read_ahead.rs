//! Delta rounds read ahead (issue 14): when a delta page goes out with a `nextLink`, the page that link names is
//! rendered at once, on another core, while the client reads the one it has. A round is strictly sequential — the
//! client cannot ask for page k+1 before it has parsed page k — so without this the server sits idle while the
//! client parses and the client waits while the server reads; with it, the two overlap.
//!
//! Serving a page rendered a moment early keeps delta's promise: an initial page lists objects as they were when it
//! was rendered, after the round's change-log position was taken, so whatever changes later comes again in the
//! round's change pages; a change page covers the log up to its last entry, and the next link starts after it. A
//! page is kept for [`READ_AHEAD_TTL`] of the directory's clock at most (a client that comes back later gets one
//! rendered then), taken by the first request that asks for it, and at most [`MAX_PAGES`] wait at once, so a client
//! that stops mid-round leaves one page behind for thirty seconds and nothing more. Each request is authorized as before;
//! a page is filed under everything its bytes depend on (tenant, kind, cursor, page size, `$select`, the base URL the
//! links are written with), so a request only gets the page it would have rendered itself.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tenantsync_directory::DeltaCursor;
use tenantsync_model::{ObjectKind, TenantId};
use time::{Duration, OffsetDateTime};
use tokio::sync::OnceCell;

use crate::AppState;

/// How long a page rendered ahead is served (by the directory's clock).
pub(crate) const READ_AHEAD_TTL: Duration = Duration::seconds(30);

/// Pages rendered ahead that may wait at once, across tenants (a page of 999 users is about 1.5 MB).
pub(crate) const MAX_PAGES: usize = 32;

/// One delta page as asked for, once its options are read: everything its bytes depend on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DeltaRequest {
    pub(crate) tenant: TenantId,
    pub(crate) kind: ObjectKind,
    /// None starts a round.
    pub(crate) cursor: Option<DeltaCursor>,
    pub(crate) page_size: u32,
    /// `$select` as the client wrote it (kept in the links), and its parsed names.
    pub(crate) select_text: Option<String>,
    pub(crate) selected: Option<Vec<&'static str>>,
    pub(crate) members_selected: bool,
    pub(crate) base: String,
}

/// A rendered delta page: the response body, the cursor of the page after it when it has a `nextLink`, and when it
/// was rendered (a page served from here carries its age in an `Age` header).
#[derive(Clone, Debug)]
pub(crate) struct RenderedPage {
    pub(crate) body: Bytes,
    pub(crate) next: Option<DeltaCursor>,
    pub(crate) rendered_at: OffsetDateTime,
}

/// A page being rendered, or rendered (None when rendering it failed: the request renders it again and gets the
/// error itself).
type Slot = Arc<OnceCell<Option<RenderedPage>>>;

/// The pages rendered ahead, waiting for the request that names them.
#[derive(Default)]
pub(crate) struct ReadAhead {
    pages: Mutex<HashMap<DeltaRequest, (OffsetDateTime, Slot)>>,
}

impl ReadAhead {
    /// Starts rendering `request` in the background, unless [`MAX_PAGES`] already wait.
    pub(crate) fn start(self: &Arc<Self>, state: &AppState, request: DeltaRequest) {
        let now = state.directory.clock().now();
        let (state, asked) = (state.clone(), request.clone());
        // The state (its store among it) goes with the rendering, not with the task's wait after it.
        self.start_rendering(now, request, async move { crate::objects::render_delta(&state, &asked).await.ok() });
    }

    /// Files `request` at `now` and renders it with `render` in a task of its own, which later drops the page if
    /// nobody has taken it by its expiry (even if no other round starts meanwhile).
    fn start_rendering(
        self: &Arc<Self>,
        now: OffsetDateTime,
        request: DeltaRequest,
        render: impl Future<Output = Option<RenderedPage>> + Send + 'static,
    ) {
        let slot = Slot::default();
        {
            let mut pages = self.pages.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pages.retain(|_, (filed_at, _)| now - *filed_at <= READ_AHEAD_TTL);
            if pages.len() >= MAX_PAGES || pages.contains_key(&request) {
                return;
            }
            pages.insert(request.clone(), (now, slot.clone()));
        }
        metrics::counter!("tenantsync_delta_read_ahead_total", "outcome" => "started").increment(1);
        let pages = Arc::clone(self);
        tokio::spawn(async move {
            slot.get_or_init(|| render).await;
            // While the task waits it does not hold the page: a page taken is freed once its response is sent, not
            // thirty seconds later. Holding every page of a round for that long (about 1.5 MB each) had the server
            // take fresh memory from the system for each one: a 100,000-user delta read ran at about 60 % of its
            // earlier rate, with 0.8 GB of peak RSS.
            let filed = Arc::downgrade(&slot);
            drop(slot);
            tokio::time::sleep(std::time::Duration::from_secs(READ_AHEAD_TTL.whole_seconds().unsigned_abs())).await;
            let mut pages = pages.pages.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // (The weak reference keeps the slot's address from being reused by another page meanwhile.)
            if pages.get(&request).is_some_and(|(_, waiting)| std::ptr::eq(Arc::as_ptr(waiting), filed.as_ptr())) {
                pages.remove(&request);
            }
        });
    }

    /// The page rendered ahead for `request`, waiting for it if it is still being rendered (or rendering it here
    /// if its task has not started yet); None if none was filed, it is older than [`READ_AHEAD_TTL`], or rendering
    /// it failed.
    pub(crate) async fn take(&self, state: &AppState, request: &DeltaRequest) -> Option<RenderedPage> {
        let now = state.directory.clock().now();
        self.take_at(now, request, async { crate::objects::render_delta(state, request).await.ok() }).await
    }

    /// [`ReadAhead::take`] at `now`, rendering with `render` if the page's task has not started yet.
    async fn take_at(
        &self,
        now: OffsetDateTime,
        request: &DeltaRequest,
        render: impl Future<Output = Option<RenderedPage>>,
    ) -> Option<RenderedPage> {
        let (filed_at, slot) = self.pages.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(request)?;
        if now - filed_at > READ_AHEAD_TTL {
            metrics::counter!("tenantsync_delta_read_ahead_total", "outcome" => "expired").increment(1);
            return None;
        }
        let page = slot.get_or_init(|| render).await.clone();
        let outcome = if page.is_some() { "served" } else { "failed" };
        metrics::counter!("tenantsync_delta_read_ahead_total", "outcome" => outcome).increment(1);
        page
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Marks when the bytes it owns are freed.
    struct Owner(Arc<AtomicBool>, Vec<u8>);

    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            &self.1
        }
    }

    impl Drop for Owner {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A page rendered ahead and taken lives as long as its reader holds it, not until its expiry (the sixteenth
    /// session's build kept every page of a round for thirty seconds).
    #[tokio::test]
    async fn a_page_taken_is_freed_when_its_reader_drops_it() {
        let ahead = Arc::new(ReadAhead::default());
        let now = OffsetDateTime::UNIX_EPOCH;
        let request = DeltaRequest {
            tenant: TenantId::parse("6f1c2a9e-5b0d-4c8e-9a4f-0d2b7e3c1a55").expect("an id"),
            kind: ObjectKind::User,
            cursor: None,
            page_size: 2,
            select_text: None,
            selected: None,
            members_selected: false,
            base: "http://127.0.0.1".to_owned(),
        };
        let freed = Arc::new(AtomicBool::new(false));
        let body = Bytes::from_owner(Owner(freed.clone(), b"{\"value\":[]}".to_vec()));
        let page = RenderedPage { body, next: None, rendered_at: now };
        ahead.start_rendering(now, request.clone(), async move { Some(page) });
        // Let the task render it (a request that came first would render it itself).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let taken = ahead.take_at(now, &request, async { None }).await.expect("the page rendered ahead");
        assert_eq!(&taken.body[..], b"{\"value\":[]}");
        assert!(ahead.take_at(now, &request, async { None }).await.is_none(), "a page is taken once");
        // The task let go of the page in the poll that rendered it (during the wait above): only the reader holds it.
        assert!(!freed.load(Ordering::SeqCst), "the reader still holds the page");
        drop(taken);
        assert!(freed.load(Ordering::SeqCst), "the page was freed with its reader's copy, not at its expiry");
    }
}
