//! Files behind BinaryContent, kept under the media root (`SBM_MEDIA_ROOT`) and served at
//! `/media/<path>` so that the Message Sender can fetch audio by URL.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::model::StoredFile;

#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
}

impl MediaStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MediaStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes an upload under a fresh, unguessable name that keeps a sanitised extension from
    /// the original file name (players and the Message Sender go by it). The file is written to
    /// a temporary name and renamed, so a half-written file is never served.
    pub async fn save(
        &self,
        original_name: Option<&str>,
        media_type: Option<&str>,
        bytes: &[u8],
    ) -> std::io::Result<StoredFile> {
        let ext = original_name.and_then(extension).unwrap_or_default();
        let name = format!("{}{}", uuid::Uuid::new_v4().simple(), ext);
        tokio::fs::create_dir_all(&self.root).await?;
        let tmp = self.root.join(format!(".{name}.part"));
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, self.root.join(&name)).await?;
        let media_type = media_type
            .filter(|t| !t.is_empty() && *t != "application/octet-stream")
            .map(str::to_string)
            .unwrap_or_else(|| {
                mime_guess::from_path(&name)
                    .first_or_octet_stream()
                    .to_string()
            });
        Ok(StoredFile {
            path: name,
            media_type,
            size_bytes: bytes.len() as i64,
        })
    }

    pub async fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.root.join(path)).await
    }

    /// Removes a file no record refers to any more. Failure only leaves an orphan file behind,
    /// so it is logged rather than reported.
    pub async fn remove(&self, path: &str) {
        if let Err(err) = tokio::fs::remove_file(self.root.join(path)).await {
            tracing::warn!(%path, error = %err, "could not remove media file");
        }
    }
}

/// ".mp3" from "welcome.MP3": letters and digits only, at most 10 of them.
pub fn extension(name: &str) -> Option<String> {
    let ext = Path::new(name).extension()?.to_str()?;
    let ok = !ext.is_empty() && ext.len() <= 10 && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| format!(".{}", ext.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::extension;

    #[test]
    fn extensions_are_sanitised() {
        assert_eq!(extension("hello.MP3").as_deref(), Some(".mp3"));
        assert_eq!(extension("a.b.ogg").as_deref(), Some(".ogg"));
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("evil.m p3"), None);
        assert_eq!(extension("../../etc/passwd"), None);
    }
}
