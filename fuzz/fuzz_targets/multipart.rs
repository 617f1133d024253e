//! Uploads (POST/PUT/PATCH /api/v1/binarycontent/): any Content-Type header and body go
//! through axum's `Multipart` extractor, as the upload handler takes it (the boundary read from
//! the header, then multer over the body), and every part's file name and declared type
//! through `content::media::accept_upload` (the media type check and the kept extension):
//! parts, a rejection or an error, never a panic.
#![no_main]
use axum::extract::{FromRequest, Multipart};
use libfuzzer_sys::fuzz_target;

// The input's first line is the Content-Type header, the rest the body.
fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(request) = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/binarycontent/")
        .header("content-type", content_type)
        .body(axum::body::Body::from(body.to_vec()))
    else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let Ok(mut form) = Multipart::from_request(request, &()).await else {
            return;
        };
        while let Ok(Some(field)) = form.next_field().await {
            let _ = field.name();
            let file_name = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(str::to_string);
            let _ =
                sbm::content::media::accept_upload(file_name.as_deref(), content_type.as_deref());
            if let Some(name) = &file_name {
                let _ = sbm::content::media::extension(name);
            }
            if field.bytes().await.is_err() {
                break;
            }
        }
    });
});
