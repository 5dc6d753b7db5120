//! The Rust snippets of README.md and docs/ as doctests: `cargo test
//! --workspace` compiles every ```` ```rust ```` block of these pages (they
//! are `no_run`: they need the module loaded), so a snippet that drifts
//! from the library fails the build. Kernel-side excerpts are ```` ```rust
//! ,ignore ```` blocks that `scripts/doccheck.py` finds verbatim in kmod/.

#![doc = include_str!("../../../README.md")]

#[doc = include_str!("../../../docs/library.md")]
pub mod library {}
