//! A thread with its own actix system: where the in-process mock and the
//! webhook receiver run (both need actix's runtime, which a
//! `#[tokio::test]` does not have), and where the typed clients' requests
//! are sent. Stopped and joined on drop.

use std::future::Future;
use std::pin::Pin;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::http::Http;

/// What the thread runs when it is told to stop.
pub(crate) type OnStop = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>>>;

/// The running thread; dropping it stops what runs there and joins it.
pub(crate) struct KitThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a thread named `name` whose actix system runs `start`, and
/// returns once `start` has finished: its value, a client sending from
/// that thread, and the thread.
pub(crate) async fn spawn<T, F, Fut>(name: &str, start: F) -> Result<(T, Http, KitThread), String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(T, OnStop), String>> + 'static,
{
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            actix_rt::System::new().block_on(async move {
                let http = Http::new(actix_rt::System::current().arbiter().clone());
                match start().await {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                    Ok((value, on_stop)) => {
                        if ready_tx.send(Ok((value, http))).is_ok() {
                            // A dropped sender stops it too.
                            let _ = stop_rx.await;
                        }
                        on_stop().await;
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    let mut kit = KitThread {
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    match ready_rx.await {
        Ok(Ok((value, http))) => Ok((value, http, kit)),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            // The thread ended without a word: it panicked; join says so.
            let panic = kit.thread.take().map(JoinHandle::join);
            Err(format!(
                "the {name} thread stopped while starting: {panic:?}"
            ))
        }
    }
}

impl Drop for KitThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // Joined, so that once the owner is dropped its port is closed.
            let _ = thread.join();
        }
    }
}
