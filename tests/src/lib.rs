//! Helpers shared by the end-to-end tests: spawning real processes on free ports.
