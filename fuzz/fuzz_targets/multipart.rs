//! Multipart upload bodies and part headers (axum's multer, as src/http/binary_content.rs reads
//! them, and the file name's extension that src/content/media.rs keeps): any body with any
//! boundary reads as parts or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &[u8])| {
    let (boundary, body) = input;
    if boundary.is_empty() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let chunk: Result<bytes::Bytes, std::io::Error> = Ok(bytes::Bytes::copy_from_slice(body));
        let stream = futures_util::stream::iter([chunk]);
        let mut form = multer::Multipart::new(stream, boundary);
        while let Ok(Some(field)) = form.next_field().await {
            if let Some(name) = field.file_name() {
                let _ = sbm::content::media::extension(name);
            }
            let _ = field.content_type().map(|m| m.to_string());
            if field.bytes().await.is_err() {
                break;
            }
        }
    });
});
