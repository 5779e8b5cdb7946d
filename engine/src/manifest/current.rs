//! `CURRENT`: one line naming the live MANIFEST, replaced atomically. Spec:
//! docs/format/manifest.md.
//!
//! ```text
//! CURRENT := "MANIFEST-" digits "\n"
//! ```

use crate::error::{Error, Result};
use crate::filename::{self, FileKind};
use crate::fs::Fs;
use std::path::Path;

/// Reads `dir/CURRENT` and returns the manifest file name it holds (without the
/// newline). A missing or malformed CURRENT is `Error::Corruption` naming it.
pub fn read_current(fs: &dyn Fs, dir: &Path) -> Result<String> {
    let path = dir.join(filename::CURRENT);
    if !fs.exists(&path) {
        return Err(Error::corruption(&path, 0, "CURRENT is missing"));
    }
    let bytes = fs.read_all(&path)?;
    let garbled = |what: &str| Error::corruption(&path, 0, format!("CURRENT {what}: {bytes:?}"));
    let text = std::str::from_utf8(&bytes).map_err(|_| garbled("is not UTF-8"))?;
    let name = text
        .strip_suffix('\n')
        .ok_or_else(|| garbled("does not end with a newline"))?;
    match filename::parse(name) {
        Some(FileKind::Manifest(_)) if !name.contains('\n') => Ok(name.to_string()),
        _ => Err(garbled("does not name a manifest")),
    }
}

/// Points `dir/CURRENT` at `MANIFEST-<manifest_number>` atomically: writes the temp
/// file `temp_number`, syncs it, renames it over CURRENT and syncs the directory. On
/// error the temp file is removed where possible; CURRENT then names either the old or
/// the new manifest.
pub fn set_current(fs: &dyn Fs, dir: &Path, manifest_number: u64, temp_number: u64) -> Result<()> {
    let temp = filename::temp_path(dir, temp_number);
    let contents = format!("{}\n", filename::manifest_name(manifest_number));
    let result = fs
        .write_all_synced(&temp, contents.as_bytes())
        .and_then(|()| fs.rename(&temp, &dir.join(filename::CURRENT)))
        .and_then(|()| fs.sync_dir(dir));
    if result.is_err() && fs.exists(&temp) {
        let _ = fs.remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    #[test]
    fn set_then_read() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        set_current(&fs, dir, 7, 8).unwrap();
        assert_eq!(read_current(&fs, dir).unwrap(), "MANIFEST-000007");
        assert!(!fs.exists(&filename::temp_path(dir, 8)));
    }

    #[test]
    fn garbled_current_is_corruption() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        assert!(read_current(&fs, dir).unwrap_err().is_corruption());
        for bad in [
            &b"MANIFEST-000007"[..],
            b"000007.log\n",
            b"\xff\n",
            b"MANIFEST-1\n\n",
        ] {
            fs.write_all_synced(&dir.join("CURRENT"), bad).unwrap();
            let err = read_current(&fs, dir).unwrap_err();
            assert!(err.to_string().contains("CURRENT"), "{err}");
            assert!(err.is_corruption());
        }
    }
}
