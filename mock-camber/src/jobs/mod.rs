//! A job's home: its life as a value (`job`: the `Job`, its `Stage`s (`stage`), the
//! control `Action`s and the `Ending` they lead to), what a submit decides
//! (`submit`), and the one path of cancel, advance, complete and fail for
//! the tenant and admin APIs alike (`control`). Routes parse, call one of
//! these, and render; the engine (`engine/stages.rs`) runs jobs over time.

pub mod control;
pub mod job;
pub mod stage;
pub mod submit;
