//! The jobs API (SPEC §6).
