#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_compression::tokio::bufread::{BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder};
use http::HeaderMap;
use http_body_util::BodyExt;
use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------------------------------------------
// Test bodies

/// How much a test body has handed out.
#[derive(Clone, Default)]
struct Pulled {
    frames: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

impl Pulled {
    fn frames(&self) -> usize {
        self.frames.load(Ordering::SeqCst)
    }
    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
    fn count(&self, frame: &Frame<Bytes>) {
        self.frames.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(frame.data_ref().map_or(0, Bytes::len), Ordering::SeqCst);
    }
}

/// A body of scripted frames and errors.
struct Script {
    items: VecDeque<Result<Frame<Bytes>, BoxError>>,
    pulled: Pulled,
}

impl Script {
    fn chunked(bytes: &[u8], size: usize) -> Self {
        let items = bytes.chunks(size.max(1)).map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
        Script { items, pulled: Pulled::default() }
    }

    /// Frames cut at the given sizes, cycling through them.
    fn cut(bytes: &[u8], sizes: &[usize]) -> Self {
        let mut items = VecDeque::new();
        let (mut at, mut i) = (0, 0);
        while at < bytes.len() {
            let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1).max(1);
            let end = (at + size).min(bytes.len());
            items.push_back(Ok(Frame::data(Bytes::copy_from_slice(&bytes[at..end]))));
            (at, i) = (end, i + 1);
        }
        Script { items, pulled: Pulled::default() }
    }

    fn then(mut self, item: Result<Frame<Bytes>, BoxError>) -> Self {
        self.items.push_back(item);
        self
    }
}

impl Body for Script {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let item = this.items.pop_front();
        if let Some(Ok(frame)) = &item {
            this.pulled.count(frame);
        }
        Poll::Ready(item)
    }
}

/// A large body made on the fly: `prefix`, then `count` copies of `filler`.
struct Generated {
    prefix: Option<Bytes>,
    filler: Bytes,
    count: usize,
    pulled: Pulled,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let data = match this.prefix.take() {
            Some(prefix) => prefix,
            None if this.count > 0 => {
                this.count -= 1;
                this.filler.clone()
            }
            None => return Poll::Ready(None),
        };
        let frame = Frame::data(data);
        this.pulled.count(&frame);
        Poll::Ready(Some(Ok(frame)))
    }
}

async fn delivered<B: Body<Data = Bytes, Error = BoxError>>(body: B) -> Vec<u8> {
    body.collect().await.unwrap().to_bytes().to_vec()
}

async fn scan_bytes(bytes: &[u8], frame: usize, coding: Option<&str>) -> (HeadSignals, Vec<u8>) {
    let inspected = scan_head(Script::chunked(bytes, frame), coding, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    (inspected.signals, delivered(inspected.body).await)
}

async fn compress(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let result = match coding {
        "gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "deflate" => ZlibEncoder::new(data).read_to_end(&mut out).await,
        "raw-deflate" => DeflateEncoder::new(data).read_to_end(&mut out).await,
        "br" => BrotliEncoder::new(data).read_to_end(&mut out).await,
        "zstd" => ZstdEncoder::new(data).read_to_end(&mut out).await,
        other => panic!("no encoder for {other}"),
    };
    result.unwrap();
    out
}

fn meta(name: &str, content: &str) -> (String, String) {
    (name.to_owned(), content.to_owned())
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>A page &amp; its <b>title</b></title>
  <meta name="robots" content="noai, noimageai">
  <meta name="GPTBot" content="noai">
  <meta name="tdm-reservation" content="1">
  <meta property="og:title" content="not a name">
  <link rel="stylesheet" href="/style.css">
  <link rel="license" type="application/rsl+xml" href="/license.xml">
  <script>var s = "<meta name='robots' content='inside-script'>";</script>
</head>
<body>
  <meta name="robots" content="in-body">
  <p>Hello</p>
</body>
</html>
"#;

fn page_metas() -> Vec<(String, String)> {
    vec![meta("robots", "noai, noimageai"), meta("gptbot", "noai"), meta("tdm-reservation", "1")]
}

// ---------------------------------------------------------------------------------------------------------------
// The head's signals

#[tokio::test]
async fn plain_page_yields_robots_bot_tdm_metas_and_license_link() {
    let (signals, body) = scan_bytes(PAGE.as_bytes(), 1024, None).await;
    assert_eq!(signals.metas, page_metas());
    assert_eq!(signals.license_links, vec![("/license.xml".to_owned(), Some("application/rsl+xml".to_owned()))]);
    assert!(signals.complete && !signals.truncated, "{signals:?}");
    assert!(signals.problems.is_empty());
    assert_eq!(body, PAGE.as_bytes());
}

#[tokio::test]
async fn metas_after_the_head_are_not_collected_and_reading_stops_at_the_end_of_head() {
    let head = "<html><head><meta name=robots content=noai></head>";
    let after = "<meta name=robots content=after-head><body><meta name=tdm-reservation content=1>";
    let page = format!("{head}{after}{}", "<p>filler</p>".repeat(1000));
    // Frame boundaries: the whole head in frame 1, everything else in later frames.
    let mut script = Script::cut(page.as_bytes(), &[head.len(), 16]);
    let pulled = script.pulled.clone();
    script = script.then(Err("must never be read".into()));
    let inspected = scan_head(script, None, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    assert_eq!(inspected.signals.metas, vec![meta("robots", "noai")]);
    assert!(inspected.signals.complete);
    assert_eq!(pulled.frames(), 1, "read past the end of <head>");
    assert_eq!(inspected.body.held_bytes(), head.len());
}

#[tokio::test]
async fn body_start_ends_the_head_without_a_closing_tag() {
    let page = "<html><head><meta name=robots content=noai><body><meta name=robots content=late></body>";
    let (signals, body) = scan_bytes(page.as_bytes(), 5, None).await;
    assert_eq!(signals.metas, vec![meta("robots", "noai")]);
    assert!(signals.complete);
    assert_eq!(body, page.as_bytes());
}

#[tokio::test]
async fn without_a_head_tag_metas_before_body_content_count() {
    let page = "<!doctype html><meta name=Robots content=NoAI><title>t</title>\n<link rel='License' href=' /l.xml '>\
                <div>content</div><meta name=robots content=too-late>";
    let (signals, _) = scan_bytes(page.as_bytes(), 3, None).await;
    assert_eq!(signals.metas, vec![meta("robots", "NoAI")]);
    assert_eq!(signals.license_links, vec![("/l.xml".to_owned(), None)]);
    assert!(signals.complete);
}

#[tokio::test]
async fn body_text_implies_the_body_like_a_browser() {
    let page = "<meta name=a content=1>Hello<meta name=b content=2>";
    let (signals, _) = scan_bytes(page.as_bytes(), 64, None).await;
    assert_eq!(signals.metas, vec![meta("a", "1")]);
    assert!(signals.complete);
}

#[tokio::test]
async fn template_content_is_inert_and_noscript_is_raw_text_as_with_scripting_on() {
    let page = "<head><template><div></div><meta name=robots content=in-template></template>\
                <title>Words</title><noscript><meta name=robots content=noscript></noscript>\
                <meta name=robots content=noai></head>";
    let (signals, _) = scan_bytes(page.as_bytes(), 7, None).await;
    assert_eq!(signals.metas, vec![meta("robots", "noai")]);
    assert!(signals.complete);
}

#[tokio::test]
async fn metas_without_name_or_content_and_other_links_are_skipped() {
    let page = "<head><meta name=robots><meta content=noai><meta name='  ' content=x>\
                <meta http-equiv=refresh content=0><link rel=license><link rel='alternate license' href=/a type=text/html>\
                <meta name=' CCBot ' content=''></head>";
    let (signals, _) = scan_bytes(page.as_bytes(), 11, None).await;
    assert_eq!(signals.metas, vec![meta("ccbot", "")]);
    assert_eq!(signals.license_links, vec![("/a".to_owned(), Some("text/html".to_owned()))]);
}

#[tokio::test]
async fn character_references_in_attributes_are_read_as_a_browser_reads_them() {
    // Found by tests/fuzz.rs: lol_html returns attribute values as written.
    let page = "<head><meta name='&#114;obots' content='&#110;oai&#44; noimageai'>\
                <link rel=license href='/l.xml?a=1&amp;b=2&c' type='application/rsl&#x2B;xml'></head>";
    let (signals, _) = scan_bytes(page.as_bytes(), 5, None).await;
    assert_eq!(signals.metas, vec![meta("robots", "noai, noimageai")]);
    assert_eq!(signals.license_links, vec![("/l.xml?a=1&b=2&c".to_owned(), Some("application/rsl+xml".to_owned()))]);
}

#[test]
fn character_reference_table() {
    for (written, read) in [
        ("a&amp;b", "a&b"),
        ("&lt;&gt;&quot;&apos;&nbsp;", "<>\"'\u{a0}"),
        ("&#44&#x2c;&#X2C;", ",,,"),
        ("&#0;&#xD800;&#99999999999;", "\u{fffd}\u{fffd}\u{fffd}"),
        ("&copy; & &#; &#x; &amp", "&copy; & &#; &#x; &amp"),
        ("&amp;#44;", "&#44;"),
    ] {
        assert_eq!(decode_character_references(written), read, "{written}");
    }
}

#[tokio::test]
async fn a_document_that_ends_inside_the_head_is_complete() {
    let page = "<html><head><meta name=robots content=noai>";
    let (signals, body) = scan_bytes(page.as_bytes(), 2, None).await;
    assert_eq!(signals.metas, vec![meta("robots", "noai")]);
    assert!(signals.complete && !signals.truncated);
    assert_eq!(body, page.as_bytes());
}

#[tokio::test]
async fn empty_body_is_complete_and_empty() {
    let (signals, body) = scan_bytes(b"", 1, None).await;
    assert!(signals.complete && signals.metas.is_empty() && signals.problems.is_empty());
    assert!(body.is_empty());
}

#[tokio::test]
async fn empty_body_labelled_with_a_coding_is_complete_without_problems() {
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let (signals, body) = scan_bytes(b"", 1, Some(coding)).await;
        assert!(signals.complete && signals.problems.is_empty(), "{coding}: {signals:?}");
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn a_long_attribute_split_over_many_frames_is_read_whole() {
    let content = "noai ".repeat(40_000); // 200,000 bytes
    let page = format!("<head><meta name=robots content=\"{content}\"></head>");
    let (signals, body) = scan_bytes(page.as_bytes(), 1000, None).await;
    assert_eq!(signals.metas, vec![meta("robots", &content)]);
    assert!(signals.complete && signals.problems.is_empty(), "{:?}", signals.problems);
    assert_eq!(body, page.as_bytes());
}

#[tokio::test]
async fn utf8_bom_is_skipped_and_utf16_is_a_problem() {
    let page = [&b"\xef\xbb\xbf"[..], b"<meta name=robots content=noai><p>"].concat();
    let (signals, body) = scan_bytes(&page, 1, None).await;
    assert_eq!(signals.metas, vec![meta("robots", "noai")]);
    assert_eq!(body, page);

    let utf16: Vec<u8> = "\u{feff}<meta name=robots content=noai>".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let (signals, body) = scan_bytes(&utf16, 4, None).await;
    assert!(!signals.complete && signals.metas.is_empty());
    assert_eq!(signals.problems, vec!["UTF-16 HTML cannot be scanned".to_owned()]);
    assert_eq!(body, utf16);
}

#[tokio::test]
async fn declared_charset_is_honoured() {
    // "café" in windows-1252: the content is decoded with the declared charset.
    let page = [&b"<meta charset=windows-1252><meta name=robots content='caf"[..], b"\xe9'><p>"].concat();
    let (signals, _) = scan_bytes(&page, 8, None).await;
    assert_eq!(signals.metas, vec![meta("robots", "café")]);
}

// ---------------------------------------------------------------------------------------------------------------
// Content codings

async fn assert_coded_page_scans(coding: &str, header: &str) {
    let compressed = compress(coding, PAGE.as_bytes()).await;
    let inspected = scan_head(Script::chunked(&compressed, 7), Some(header), DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    assert_eq!(inspected.signals.metas, page_metas(), "{coding}");
    assert_eq!(inspected.signals.license_links.len(), 1, "{coding}");
    assert!(inspected.signals.complete, "{coding}: {:?}", inspected.signals);
    assert!(inspected.signals.problems.is_empty(), "{coding}: {:?}", inspected.signals.problems);
    assert_eq!(delivered(inspected.body).await, compressed, "{coding}: delivered bytes differ");
}

#[tokio::test]
async fn gzip_page_in_seven_byte_frames() {
    assert_coded_page_scans("gzip", "gzip").await;
    assert_coded_page_scans("gzip", "X-GZIP").await;
}

#[tokio::test]
async fn brotli_page_in_seven_byte_frames() {
    assert_coded_page_scans("br", "br").await;
}

#[tokio::test]
async fn deflate_page_zlib_wrapped_or_raw() {
    assert_coded_page_scans("deflate", "deflate").await;
    assert_coded_page_scans("raw-deflate", "deflate").await;
}

#[tokio::test]
async fn zstd_page_in_seven_byte_frames() {
    assert_coded_page_scans("zstd", " identity, zstd ").await;
}

#[tokio::test]
async fn gzip_head_ending_early_does_not_read_the_whole_body() {
    let page = format!("<head><meta name=robots content=noai></head><body>{}", "<p>lorem ipsum</p>\n".repeat(50_000));
    let compressed = compress("gzip", page.as_bytes()).await;
    let script = Script::chunked(&compressed, 64);
    let pulled = script.pulled.clone();
    let inspected = scan_head(script, Some("gzip"), DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    assert!(inspected.signals.complete);
    assert!(pulled.bytes() < 1024, "pulled {} of {} bytes", pulled.bytes(), compressed.len());
    assert_eq!(delivered(inspected.body).await, compressed);
}

#[tokio::test]
async fn corrupt_gzip_is_a_problem_and_the_body_is_still_delivered() {
    let mut compressed = compress("gzip", PAGE.as_bytes()).await;
    for byte in compressed.iter_mut().skip(12).take(40) {
        *byte ^= 0x5a;
    }
    let inspected = scan_head(Script::chunked(&compressed, 9), Some("gzip"), DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    let signals = &inspected.signals;
    assert!(!signals.complete && !signals.truncated, "{signals:?}");
    assert!(signals.problems.iter().any(|p| p.starts_with("gzip decoding failed")), "{:?}", signals.problems);
    assert_eq!(delivered(inspected.body).await, compressed);
}

#[tokio::test]
async fn plain_html_labelled_gzip_is_a_problem_not_an_error() {
    let inspected = scan_head(Script::chunked(PAGE.as_bytes(), 100), Some("gzip"), 1024).await.unwrap();
    assert!(!inspected.signals.complete && !inspected.signals.problems.is_empty());
    assert_eq!(delivered(inspected.body).await, PAGE.as_bytes());
}

#[tokio::test]
async fn undecodable_codings_are_problems_and_the_body_is_untouched() {
    for header in ["compress", "gzip, br", "x-custom"] {
        let script = Script::chunked(PAGE.as_bytes(), 10);
        let pulled = script.pulled.clone();
        let inspected = scan_head(script, Some(header), DEFAULT_MAX_HEAD_BYTES).await.unwrap();
        assert!(!inspected.signals.complete && !inspected.signals.truncated, "{header}");
        assert_eq!(inspected.signals.problems.len(), 1, "{header}");
        assert_eq!(pulled.frames(), 0, "{header}: nothing should be read");
        assert_eq!(delivered(inspected.body).await, PAGE.as_bytes());
    }
}

#[test]
fn coding_header_parsing() {
    assert_eq!(Coding::from_header(None), Ok(Coding::Identity));
    assert_eq!(Coding::from_header(Some("")), Ok(Coding::Identity));
    assert_eq!(Coding::from_header(Some("Identity")), Ok(Coding::Identity));
    assert_eq!(Coding::from_header(Some("GZip")), Ok(Coding::Gzip));
    assert_eq!(Coding::from_header(Some("br")), Ok(Coding::Brotli));
    assert_eq!(Coding::from_header(Some("deflate")), Ok(Coding::Deflate));
    assert_eq!(Coding::from_header(Some("zstd, identity")), Ok(Coding::Zstd));
    let long = "x".repeat(10_000);
    let problem = Coding::from_header(Some(&long)).unwrap_err();
    assert!(problem.len() < 200, "problem text is bounded");
}

#[test]
fn zlib_header_sniffing() {
    assert!(is_zlib_header(&[0x78, 0x9c]));
    assert!(is_zlib_header(&[0x78, 0x01]));
    assert!(!is_zlib_header(&[0x78]));
    assert!(!is_zlib_header(&[0xed, 0xbd]));
}

// ---------------------------------------------------------------------------------------------------------------
// Limits

#[tokio::test]
async fn huge_head_is_truncated_and_still_delivered_whole() {
    let max = 16 * 1024;
    let page = format!(
        "<head><meta name=robots content=noai><style>{}</style><meta name=robots content=beyond></head><body>x",
        "p { color: red }\n".repeat(5_000)
    );
    let inspected = scan_head(Script::chunked(page.as_bytes(), 1000), None, max).await.unwrap();
    let signals = &inspected.signals;
    assert!(signals.truncated && !signals.complete, "{signals:?}");
    assert_eq!(signals.metas, vec![meta("robots", "noai")]);
    assert!(inspected.body.held_bytes() <= max + 1000);
    assert_eq!(delivered(inspected.body).await, page.as_bytes());
}

#[tokio::test]
async fn twenty_megabytes_of_html_read_only_a_bounded_prefix() {
    let filler = Bytes::from("<!-- a head that never ends -->".repeat(2048)); // 63,488 bytes
    let count = 20 * 1024 * 1024 / filler.len();
    let pulled = Pulled::default();
    let body = Generated {
        prefix: Some(Bytes::from_static(b"<html><head><meta name=robots content=noai>")),
        filler: filler.clone(),
        count,
        pulled: pulled.clone(),
    };
    let inspected = scan_head(body, None, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    assert!(inspected.signals.truncated);
    assert_eq!(inspected.signals.metas, vec![meta("robots", "noai")]);
    assert!(pulled.bytes() <= DEFAULT_MAX_HEAD_BYTES + filler.len(), "pulled {} bytes", pulled.bytes());

    // The rest streams frame by frame; count it instead of collecting 20 MB.
    let mut body = inspected.body;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().data_ref().map_or(0, Bytes::len);
    }
    assert_eq!(total, 43 + count * filler.len());
}

#[tokio::test]
async fn gzip_bomb_is_bounded_by_decoded_bytes() {
    let page = [&b"<head><meta name=robots content=noai>"[..], &vec![b' '; 50 * 1024 * 1024]].concat();
    let compressed = compress("gzip", &page).await;
    drop(page);
    let script = Script::chunked(&compressed, 4096);
    let pulled = script.pulled.clone();
    let inspected = scan_head(script, Some("gzip"), 64 * 1024).await.unwrap();
    assert!(inspected.signals.truncated && !inspected.signals.complete);
    assert_eq!(inspected.signals.metas, vec![meta("robots", "noai")]);
    assert!(pulled.bytes() < compressed.len() / 4, "pulled {} of {}", pulled.bytes(), compressed.len());
    assert_eq!(delivered(inspected.body).await, compressed);
}

#[tokio::test]
async fn input_without_output_is_bounded_by_encoded_bytes() {
    // A zstd skippable frame (magic 0x184D2A50, 4-byte length) decodes to nothing, however long it is.
    let skip_len: u32 = 2 * 1024 * 1024;
    let mut stream = vec![0x50, 0x2a, 0x4d, 0x18];
    stream.extend_from_slice(&skip_len.to_le_bytes());
    stream.resize(stream.len() + skip_len as usize, 0xab);
    stream.extend(compress("zstd", PAGE.as_bytes()).await);
    let max = 4 * 1024;
    let script = Script::chunked(&stream, 1024);
    let pulled = script.pulled.clone();
    let inspected = scan_head(script, Some("zstd"), max).await.unwrap();
    let signals = &inspected.signals;
    assert!(signals.truncated && !signals.complete, "{signals:?}");
    assert!(pulled.bytes() <= ENCODED_FACTOR * max + 1024, "pulled {}", pulled.bytes());
    assert_eq!(delivered(inspected.body).await, stream);
}

#[tokio::test]
async fn zstd_window_beyond_http_limit_is_a_problem_not_an_allocation() {
    use async_compression::zstd::CParameter;
    let page = format!("<head><meta name=robots content=noai></head>{}", "x".repeat(100_000));
    let params = [CParameter::window_log(27)];
    let mut stream = Vec::new();
    let encoder = ZstdEncoder::with_quality_and_params(page.as_bytes(), async_compression::Level::Default, &params);
    tokio::io::BufReader::new(encoder).read_to_end(&mut stream).await.unwrap();
    let inspected = scan_head(Script::chunked(&stream, 100), Some("zstd"), DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    let signals = &inspected.signals;
    assert!(!signals.complete, "{signals:?}");
    assert!(signals.problems.iter().any(|p| p.starts_with("zstd decoding failed")), "{:?}", signals.problems);
    assert_eq!(delivered(inspected.body).await, stream);
}

#[tokio::test]
async fn zero_limit_reads_nothing_and_is_truncated() {
    let script = Script::chunked(PAGE.as_bytes(), 10);
    let pulled = script.pulled.clone();
    let inspected = scan_head(script, None, 0).await.unwrap();
    assert!(inspected.signals.truncated && !inspected.signals.complete);
    assert_eq!(pulled.frames(), 0);
    assert_eq!(delivered(inspected.body).await, PAGE.as_bytes());
}

// ---------------------------------------------------------------------------------------------------------------
// The delivered body

#[tokio::test]
async fn body_error_while_reading_the_prefix_is_an_error() {
    let script = Script::chunked(b"<html><head><meta name=robots", 5).then(Err("connection reset".into()));
    let error = scan_head(script, None, DEFAULT_MAX_HEAD_BYTES).await.err().unwrap();
    assert_eq!(error.to_string(), "connection reset");

    let compressed = compress("deflate", PAGE.as_bytes()).await;
    let script = Script::chunked(&compressed[..20], 5).then(Err("reset".into()));
    let error = scan_head(script, Some("gzip"), DEFAULT_MAX_HEAD_BYTES).await.err();
    assert!(error.is_none(), "the gzip decoder fails on a zlib header before the reset is read");
    let script = Script::chunked(&compressed[..20], 5).then(Err("reset".into()));
    let error = scan_head(script, Some("deflate"), DEFAULT_MAX_HEAD_BYTES).await.err().unwrap();
    assert_eq!(error.to_string(), "reset");

    // The error arrives while the deflate flavour is being sniffed.
    let script = Script::chunked(&compressed[..1], 5).then(Err("early reset".into()));
    let error = scan_head(script, Some("deflate"), DEFAULT_MAX_HEAD_BYTES).await.err().unwrap();
    assert_eq!(error.to_string(), "early reset");
}

#[tokio::test]
async fn body_error_after_the_prefix_reaches_the_crawler() {
    let script = Script::chunked(b"<head></head><p>", 64).then(Err("late reset".into()));
    let inspected = scan_head(script, None, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    let mut body = inspected.body;
    assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "<head></head><p>");
    assert_eq!(body.frame().await.unwrap().unwrap_err().to_string(), "late reset");
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn trailers_pass_through_inside_and_after_the_prefix() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "abc".parse().unwrap());
    for page in ["<head><meta name=a content=1>", "<head></head><p>after</p>"] {
        let script = Script::chunked(page.as_bytes(), 8).then(Ok(Frame::trailers(trailers.clone())));
        let inspected = scan_head(script, None, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
        let collected = inspected.body.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers), "{page}");
        assert_eq!(collected.to_bytes(), page.as_bytes());
    }
}

#[tokio::test]
async fn size_hint_still_counts_the_whole_body() {
    let page = format!("<head></head>{}", "x".repeat(10_000));
    let body = http_body_util::Full::new(Bytes::from(page.clone()));
    let inspected = scan_head(body, None, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    assert_eq!(inspected.body.size_hint().exact(), Some(page.len() as u64));
    assert!(!inspected.body.is_end_stream());

    let streamed = scan_head(Script::chunked(page.as_bytes(), 5), None, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
    // The script body gives no hint: the held bytes (three 5-byte frames) are the lower bound.
    assert_eq!(streamed.body.size_hint().lower(), 15);
    assert_eq!(delivered(streamed.body).await, page.as_bytes());
}

#[test]
fn scan_future_is_send_and_the_body_is_send_and_boxable() {
    fn assert_send<T: Send>(_: &T) {}
    let future = scan_head(Script::chunked(b"", 1), None, 1);
    assert_send(&future);
    let _boxable = |i: Inspected<PrefixedBody<Script>>| i.body.boxed_unsync();
}

// ---------------------------------------------------------------------------------------------------------------
// is_html

#[test]
fn is_html_cases() {
    assert!(is_html(Some("text/html")));
    assert!(is_html(Some("Text/HTML; charset=UTF-8")));
    assert!(is_html(Some(" text/html ;charset=utf-8")));
    assert!(is_html(Some("application/xhtml+xml")));
    assert!(is_html(Some("APPLICATION/XHTML+XML; q=1")));
    assert!(!is_html(None));
    assert!(!is_html(Some("")));
    assert!(!is_html(Some("text/plain")));
    assert!(!is_html(Some("text/htmlx")));
    assert!(!is_html(Some("application/json; text/html")));
    assert!(!is_html(Some("image/svg+xml")));
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

const FRAGMENTS: &[&str] = &[
    "<html>",
    "<head>",
    "</head>",
    "<body>",
    "<meta name=robots content=noai>",
    "<meta name=",
    "content=\"",
    "<link rel=license href=/l>",
    "<title>",
    "</title>",
    "<script>",
    "</script>",
    "<template>",
    "</template>",
    "<!--",
    "-->",
    "<p>",
    "text",
    " ",
    "\n",
    "<",
    ">",
    "\"",
    "'",
    "&amp;",
    "\u{e9}",
    "<svg>",
    "<![CDATA[",
    "\0",
];

fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

async fn check_round_trip(bytes: Vec<u8>, sizes: Vec<usize>, coding: Option<&str>, max: usize) {
    let inspected = scan_head(Script::cut(&bytes, &sizes), coding, max).await.unwrap();
    let signals = &inspected.signals;
    assert!(!(signals.complete && signals.truncated), "{signals:?}");
    assert_eq!(delivered(inspected.body).await, bytes);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_are_delivered_exactly(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        sizes in prop::collection::vec(1usize..300, 1..8),
        coding in prop::sample::select(vec![None, Some("gzip"), Some("deflate"), Some("br"), Some("zstd"), Some("x")]),
        max in 0usize..3000,
    ) {
        run(check_round_trip(bytes, sizes, coding, max));
    }

    #[test]
    fn html_like_pages_in_any_coding_and_chunking_round_trip(
        parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80),
        sizes in prop::collection::vec(1usize..64, 1..6),
        coding in prop::sample::select(vec!["identity", "gzip", "deflate", "br", "zstd"]),
        max in 1usize..1024,
    ) {
        run(async {
            let page = parts.concat().into_bytes();
            let encoded = match coding {
                "identity" => page.clone(),
                other => compress(other, &page).await,
            };
            check_round_trip(encoded, sizes, Some(coding), max).await;
        });
    }

    #[test]
    fn signals_do_not_depend_on_chunking_or_coding(
        parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80),
        sizes in prop::collection::vec(1usize..64, 1..6),
        coding in prop::sample::select(vec!["identity", "gzip", "deflate", "br", "zstd"]),
    ) {
        run(async {
            let page = parts.concat().into_bytes();
            let whole = scan_head(Script::chunked(&page, page.len()), None, DEFAULT_MAX_HEAD_BYTES).await.unwrap();
            let encoded = match coding {
                "identity" => page.clone(),
                other => compress(other, &page).await,
            };
            let cut = scan_head(Script::cut(&encoded, &sizes), Some(coding), DEFAULT_MAX_HEAD_BYTES).await.unwrap();
            assert_eq!(cut.signals, whole.signals);
        });
    }
}
