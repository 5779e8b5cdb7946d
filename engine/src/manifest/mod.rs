//! Version edits, versions and the MANIFEST that records them. Spec: docs/format/manifest.md.
