//! Binary content files: copied from the Django MEDIA_ROOT into sbm's media root under the same
//! relative name, so that `/media/<name>` (the old audio URLs' path) still finds them.

use std::path::{Component, Path, PathBuf};

use crate::model::content::BinaryContent;

pub struct MediaCopy {
    pub from: Option<PathBuf>,
    pub to: PathBuf,
    /// Only look: copy nothing.
    pub dry_run: bool,
}

/// A relative path that stays inside the root it is joined to.
fn safe_relative(path: &str) -> Option<&Path> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then_some(p)
}

impl MediaCopy {
    /// Fills in the file's media type and size, copying it unless it is already there with
    /// the same size. `Err` is the reason the file could not be had (the row is still
    /// imported: sbm serves the record, and the file may be put in place later).
    pub async fn bring(&self, row: &mut BinaryContent) -> Result<(), String> {
        row.media_type = mime_guess::from_path(&row.path)
            .first_or_octet_stream()
            .to_string();
        let relative = safe_relative(&row.path)
            .ok_or_else(|| format!("file name {:?} leaves the media root", row.path))?;
        let from = self
            .from
            .as_ref()
            .ok_or("file not copied: no --media-root given")?
            .join(relative);
        let meta = tokio::fs::metadata(&from)
            .await
            .map_err(|err| format!("file {} missing: {err}", from.display()))?;
        row.size_bytes = meta.len() as i64;
        let to = self.to.join(relative);
        let present = tokio::fs::metadata(&to)
            .await
            .is_ok_and(|m| m.len() == meta.len());
        if self.dry_run || present {
            return Ok(());
        }
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        // Copied to a temporary name and renamed, so a half-copied file is never served.
        let part = to.with_extension("import-part");
        tokio::fs::copy(&from, &part)
            .await
            .map_err(|err| format!("cannot copy {}: {err}", from.display()))?;
        tokio::fs::rename(&part, &to)
            .await
            .map_err(|err| format!("cannot move {} into place: {err}", to.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::safe_relative;

    #[test]
    fn names_that_leave_the_root_are_refused() {
        assert!(safe_relative("20170101120000.mp3").is_some());
        assert!(safe_relative("audio/a.ogg").is_some());
        assert!(safe_relative("../etc/passwd").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("").is_none());
    }
}
