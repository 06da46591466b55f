//! mock-camber: a standalone mock of the Camber job API.
