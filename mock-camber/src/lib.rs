//! mock-camber: a standalone mock of the Camber job API with durable, signed
//! webhooks, fault injection and an admin API.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod engine;
pub mod error;
pub use shared::healthcheck;
pub mod jobs;
pub mod journal;
pub mod metrics;
pub mod middleware;
pub mod retention;
pub mod routes;
pub mod scenario;
pub mod startup;
pub mod state;
pub mod store;
pub mod tenant;
pub mod wait;

pub use config::Settings;
pub use startup::Application;

/// Bytes allocated by the current thread, for tests that bound what an
/// operation costs (deterministic, unlike RSS).
// Test builds only: a global allocator must be `unsafe impl`; it only
// counts and forwards every call unchanged to the system allocator.
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
            // SAFETY: forwarded as is to the system allocator.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded as is to the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = ALLOCATED.try_with(|a| a.set(a.get() + new_size));
            // SAFETY: forwarded as is to the system allocator.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Bytes this thread allocated while `f` ran, and what `f` returned.
    pub fn allocated_by<R>(f: impl FnOnce() -> R) -> (usize, R) {
        let before = ALLOCATED.with(Cell::get);
        let r = f();
        (ALLOCATED.with(Cell::get) - before, r)
    }
}
