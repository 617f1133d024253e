//! Files behind BinaryContent, kept under the media root (`SBM_MEDIA_ROOT`) and served at
//! `/media/<path>` so that the Message Sender can fetch audio by URL.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::model::content::StoredFile;

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
    pub async fn save(&self, kind: &Accepted, bytes: &[u8]) -> std::io::Result<StoredFile> {
        let name = format!("{}{}", uuid::Uuid::new_v4().simple(), kind.extension);
        tokio::fs::create_dir_all(&self.root).await?;
        let tmp = self.root.join(format!(".{name}.part"));
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, self.root.join(&name)).await?;
        Ok(StoredFile {
            path: name,
            media_type: kind.media_type.clone(),
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

/// What an upload is stored as: its media type and the extension its file gets (files are
/// served by extension, so the two always agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub media_type: String,
    pub extension: String,
}

/// Images a text message may carry (the 2019 original's `image_url`). SVG is not one: it can
/// hold script.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The usual extension of common types (mime_guess lists `.m2a` first for MPEG audio).
const PREFERRED_EXTENSIONS: [(&str, &str); 8] = [
    ("audio/mpeg", "mp3"),
    ("audio/ogg", "ogg"),
    ("audio/wav", "wav"),
    ("audio/x-wav", "wav"),
    ("audio/mp4", "m4a"),
    ("audio/aac", "aac"),
    ("audio/amr", "amr"),
    ("image/jpeg", "jpg"),
];

/// Whether a Message Sender can play or attach content of this type: audio, and plain images.
pub fn is_acceptable(media_type: &str) -> bool {
    media_type.starts_with("audio/") || IMAGE_TYPES.contains(&media_type)
}

/// Decides what an upload is from its declared type (or, without one, its file name), refusing
/// anything a Message Sender cannot play: uploaded files are served from the API's own origin,
/// so an HTML or SVG file must never be stored as one. The error is for the caller.
pub fn accept_upload(
    original_name: Option<&str>,
    declared_type: Option<&str>,
) -> Result<Accepted, String> {
    let name_ext = original_name.and_then(extension);
    let guessed = |ext: &str| mime_guess::from_ext(ext.trim_start_matches('.')).first();
    let media_type = declared_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty() && t != "application/octet-stream")
        .or_else(|| name_ext.as_deref().and_then(guessed).map(|m| m.to_string()))
        .unwrap_or_else(|| "application/octet-stream".into());
    if !is_acceptable(&media_type) {
        return Err(format!(
            "Upload an audio file (audio/*) or an image (PNG, JPEG, GIF or WebP); {media_type} is not accepted."
        ));
    }
    // Keep the file's own extension when it names an acceptable type, else take the type's.
    let extension = name_ext
        .filter(|ext| guessed(ext).is_some_and(|m| is_acceptable(m.essence_str())))
        .or_else(|| {
            PREFERRED_EXTENSIONS
                .iter()
                .find(|(t, _)| *t == media_type)
                .map(|(_, ext)| *ext)
                .or_else(|| {
                    mime_guess::get_mime_extensions_str(&media_type)
                        .and_then(|exts| exts.first().copied())
                })
                .map(|ext| format!(".{ext}"))
        })
        .unwrap_or_default();
    Ok(Accepted {
        media_type,
        extension,
    })
}

/// ".mp3" from "welcome.MP3": letters and digits only, at most 10 of them.
pub fn extension(name: &str) -> Option<String> {
    let ext = Path::new(name).extension()?.to_str()?;
    let ok = !ext.is_empty() && ext.len() <= 10 && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| format!(".{}", ext.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_and_plain_images_are_accepted_and_keep_a_matching_extension() {
        let mp3 = accept_upload(Some("week1.MP3"), Some("audio/mpeg")).unwrap();
        assert_eq!(
            (mp3.media_type.as_str(), mp3.extension.as_str()),
            ("audio/mpeg", ".mp3")
        );
        let guessed = accept_upload(Some("week1.ogg"), None).unwrap();
        assert_eq!(guessed.media_type, "audio/ogg");
        let png = accept_upload(Some("x.png"), Some("image/png")).unwrap();
        assert_eq!(png.extension, ".png");
        // A declared audio type with a dangerous extension is stored under an audio one.
        let disguised = accept_upload(Some("x.html"), Some("audio/mpeg")).unwrap();
        assert_eq!(disguised.extension, ".mp3");
    }

    #[test]
    fn html_svg_and_unknown_uploads_are_refused() {
        assert!(accept_upload(Some("x.html"), Some("text/html")).is_err());
        assert!(accept_upload(Some("x.svg"), Some("image/svg+xml")).is_err());
        assert!(accept_upload(Some("x.html"), None).is_err());
        assert!(accept_upload(Some("x.bin"), Some("application/octet-stream")).is_err());
        assert!(accept_upload(None, None).is_err());
    }

    #[test]
    fn extensions_are_sanitised() {
        assert_eq!(extension("hello.MP3").as_deref(), Some(".mp3"));
        assert_eq!(extension("a.b.ogg").as_deref(), Some(".ogg"));
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("evil.m p3"), None);
        assert_eq!(extension("../../etc/passwd"), None);
    }
}
