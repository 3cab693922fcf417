//! Response inspection: what an HTML page's `<head>` says about AI use, read while the body streams.
//!
//! Step 7 of the pipeline (DESIGN §1) needs the page's own opt-outs — `<meta name="robots" content="noai">`,
//! `<meta name="<token>" ...>`, TDMRep's `<meta name="tdm-reservation">`, RSL's `<link rel="license">` — *before*
//! a single byte of the body reaches the crawler, because an opt-out withholds the body. [`scan_head`] reads the
//! body just far enough to see the end of `<head>` (or the first thing that implies `<body>`), feeds the decoded
//! bytes to `lol_html` (a streaming tokenizer: no DOM is ever built), and hands back what it found together with a
//! body that replays everything it read and then streams the rest.
//!
//! Why a **bounded prefix**: a page can put anything in its head, and a crawler may fetch 20 MB HTML files. The scan
//! stops after `max_head_bytes` of decoded HTML (`inspect.max_head_bytes`, default 256 KiB) and after
//! [`ENCODED_FACTOR`] times that many encoded bytes (a compressed stream can spend input without producing output),
//! and reports `truncated` instead of buffering more. Memory per response is therefore bounded whatever the body.
//!
//! Why the **encoded** bytes are held: the crawler must receive exactly what the origin sent (same
//! `Content-Encoding`, same `Content-Length`, byte for byte). So the decoder only feeds the scanner; the frames
//! pulled from the origin are kept as received and replayed in front of the untouched remainder. A body that cannot
//! be decoded (unknown coding, corrupt stream) is not an error of the response: the problem is recorded in
//! [`HeadSignals::problems`], the signals are marked incomplete, and the body is still deliverable.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use async_compression::tokio::bufread::{BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
use async_compression::zstd::DParameter;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use lol_html::errors::RewritingError;
use lol_html::html_content::{EndTag, TextChunk};
use lol_html::send::{Element, HtmlRewriter, Settings};
use lol_html::{HandlerResult, MemorySettings, doc_text, element};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, ReadBuf};

use super::BoxError;

/// Default for `max_head_bytes`: how much decoded HTML the scan reads at most.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 256 * 1024;

/// The scan holds at most this many times `max_head_bytes` of encoded bytes (plus the frame that crossed the line).
pub const ENCODED_FACTOR: usize = 4;

/// Size of one decoded read: small, so that a decoder with input always ready reads little past `</head>`.
const READ_CHUNK: usize = 4 * 1024;

/// zstd frames may ask for a window of up to 2^31 bytes, which the decoder would allocate; HTTP's `zstd` coding
/// caps it at 8 MiB (RFC 9659 §3), as browsers do, so a larger request is a decoding problem, not an allocation.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Longest `Content-Encoding` value quoted back in a problem, so a hostile header cannot bloat the record.
const MAX_QUOTED: usize = 64;

/// What the `<head>` said, for the signal parsers elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadSignals {
    /// `<meta name="X" content="Y">` for every meta in `<head>` with both attributes: (name trimmed and ASCII
    /// lower-cased, content raw) — `robots`, `tdm-reservation`, `tdm-policy`, a crawler's token or anything else;
    /// the caller filters by the crawler's tokens. In document order.
    pub metas: Vec<(String, String)>,
    /// `<link rel="license" href=... type=...>` entries in `<head>`: (href, type) — for RSL.
    pub license_links: Vec<(String, Option<String>)>,
    /// Everything the head could say was seen: its end (`</head>`, `<body>` or other body content) or the end of
    /// the document came within the limits, and the bytes could be decoded.
    pub complete: bool,
    /// A prefix limit (decoded or encoded bytes) was reached before the head ended.
    pub truncated: bool,
    /// Problems worth recording (undecodable coding, decompression error, unsupported charset, ...).
    pub problems: Vec<String>,
}

/// The result of [`scan_head`]: the signals, and the body to deliver if the decision allows it.
pub struct Inspected<B> {
    pub signals: HeadSignals,
    /// The held (still encoded, exactly as received) prefix followed by the rest of the original body, streamed —
    /// byte-identical to what the origin sent. Dropping it withholds the content.
    pub body: B,
}

/// Whether a response is HTML worth scanning: `text/html` or `application/xhtml+xml` (case-insensitive, parameters
/// ignored).
pub fn is_html(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/html") || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// Reads `body` until the end of `<head>`, `max_head_bytes` of decoded HTML, or the end of the body, decoding
/// `content_encoding` on the fly, and returns what the head said with a body that replays the held encoded prefix
/// and streams the rest.
///
/// Never buffers the whole body. Decoding trouble is a [`HeadSignals::problems`] entry, not an error; only an error
/// of `body` itself while the prefix is read is returned as `Err` (the body is unusable then).
pub async fn scan_head<B>(
    body: B,
    content_encoding: Option<&str>,
    max_head_bytes: usize,
) -> Result<Inspected<PrefixedBody<B>>, BoxError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let mut signals = HeadSignals::default();
    let mut tap = Tap::new(body, max_head_bytes.saturating_mul(ENCODED_FACTOR));
    match Coding::from_header(content_encoding) {
        Ok(coding) => {
            let mut decoded = Decoded::new(tap, coding).await;
            let mut scanner = HeadScanner::new(max_head_bytes);
            let mut outcome = read_head(&mut decoded, &mut scanner, max_head_bytes).await;
            tap = decoded.into_inner();
            if let Some(error) = tap.take_error() {
                return Err(error);
            }
            if tap.ended && tap.held_bytes == 0 {
                // An empty body says nothing, whatever its label; a decoder would call it truncated.
                outcome = Outcome::Complete;
            }
            outcome.record(&mut signals, coding, tap.limit_hit, max_head_bytes);
            scanner.collect_into(&mut signals);
        }
        Err(problem) => signals.problems.push(problem),
    }
    Ok(Inspected { signals, body: tap.into_body() })
}

/// How a scan ended.
enum Outcome {
    /// The head ended, or the document did.
    Complete,
    /// `max_head_bytes` of decoded HTML were read before the head ended.
    Truncated,
    /// The decoded stream could not be read (decoder error, or the encoded limit — told apart by the tap).
    ReadFailed(io::Error),
    /// The HTML could not be scanned further.
    Unscannable(String),
}

impl Outcome {
    fn record(self, signals: &mut HeadSignals, coding: Coding, encoded_limit_hit: bool, max_head_bytes: usize) {
        match self {
            Outcome::Complete => signals.complete = true,
            Outcome::Truncated => {
                signals.truncated = true;
                // Recorded, so a decision taken on a cut-short head says so.
                signals.problems.push(format!(
                    "no end of <head> within the first {max_head_bytes} decoded bytes (inspect.max_head_bytes): \
                     later signals were not read"
                ));
            }
            Outcome::ReadFailed(_) if encoded_limit_hit => {
                signals.truncated = true;
                signals.problems.push("encoded prefix limit reached before the head ended".to_owned());
            }
            Outcome::ReadFailed(error) => {
                signals.problems.push(format!("{} decoding failed: {error}", coding.name()));
            }
            Outcome::Unscannable(problem) => signals.problems.push(problem),
        }
    }
}

/// Feeds decoded bytes to the scanner until it has seen the head, the limit, or the end.
async fn read_head<R: AsyncRead + Unpin>(reader: &mut R, scanner: &mut HeadScanner, max: usize) -> Outcome {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut fed = 0usize;
    loop {
        let room = max.saturating_sub(fed).min(buf.len());
        if room == 0 {
            return Outcome::Truncated;
        }
        let n = match reader.read(&mut buf[..room]).await {
            Ok(n) => n,
            Err(error) => return Outcome::ReadFailed(error),
        };
        if n == 0 {
            return match scanner.finish() {
                Step::Failed(problem) => Outcome::Unscannable(problem),
                Step::More | Step::HeadEnded => Outcome::Complete,
            };
        }
        fed += n;
        match scanner.feed(buf.get(..n).unwrap_or_default()) {
            Step::More => {}
            Step::HeadEnded => return Outcome::Complete,
            Step::Failed(problem) => return Outcome::Unscannable(problem),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Content codings

/// A decodable `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    /// Parses the header value; `Err` is the problem to record. Stacked codings (`gzip, br`) are not decoded: they
    /// are rare enough that reporting them beats a chain of decoders.
    fn from_header(value: Option<&str>) -> Result<Coding, String> {
        let raw = value.unwrap_or_default();
        let codings: Vec<&str> =
            raw.split(',').map(str::trim).filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity")).collect();
        let coding = match codings.as_slice() {
            [] => return Ok(Coding::Identity),
            [one] => one.to_ascii_lowercase(),
            _ => return Err(format!("stacked content codings {} are not decoded", quote(raw))),
        };
        match coding.as_str() {
            "gzip" | "x-gzip" => Ok(Coding::Gzip),
            "deflate" => Ok(Coding::Deflate),
            "br" => Ok(Coding::Brotli),
            "zstd" => Ok(Coding::Zstd),
            _ => Err(format!("content coding {} is not decodable", quote(&coding))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// A header value quoted for a problem message, escaped and cut short.
fn quote(value: &str) -> String {
    let cut: String = value.chars().take(MAX_QUOTED).collect();
    format!("{cut:?}")
}

/// The decoded view of the tapped body.
enum Decoded<B> {
    Identity(Tap<B>),
    Gzip(GzipDecoder<Tap<B>>),
    /// `deflate` as RFC 9110 means it: zlib-wrapped.
    Zlib(ZlibDecoder<Tap<B>>),
    /// `deflate` as some servers send it: raw deflate, which browsers accept too.
    RawDeflate(DeflateDecoder<Tap<B>>),
    Brotli(BrotliDecoder<Tap<B>>),
    Zstd(ZstdDecoder<Tap<B>>),
}

impl<B> Decoded<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    async fn new(mut tap: Tap<B>, coding: Coding) -> Self {
        match coding {
            Coding::Identity => Decoded::Identity(tap),
            Coding::Gzip => Decoded::Gzip(GzipDecoder::new(tap)),
            Coding::Brotli => Decoded::Brotli(BrotliDecoder::new(tap)),
            Coding::Zstd => {
                Decoded::Zstd(ZstdDecoder::with_params(tap, &[DParameter::window_log_max(ZSTD_WINDOW_LOG_MAX)]))
            }
            Coding::Deflate => {
                // A body error here stays in the tap and surfaces on the first read.
                let head = std::future::poll_fn(|cx| tap.poll_peek(cx, 2)).await.unwrap_or_default();
                match is_zlib_header(&head) {
                    true => Decoded::Zlib(ZlibDecoder::new(tap)),
                    false => Decoded::RawDeflate(DeflateDecoder::new(tap)),
                }
            }
        }
    }

    fn into_inner(self) -> Tap<B> {
        match self {
            Decoded::Identity(tap) => tap,
            Decoded::Gzip(d) => d.into_inner(),
            Decoded::Zlib(d) => d.into_inner(),
            Decoded::RawDeflate(d) => d.into_inner(),
            Decoded::Brotli(d) => d.into_inner(),
            Decoded::Zstd(d) => d.into_inner(),
        }
    }
}

/// RFC 1950 header: compression method 8, window ≤ 32 KiB, check bits.
fn is_zlib_header(head: &[u8]) -> bool {
    match head {
        [cmf, flg, ..] => cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

impl<B> AsyncRead for Decoded<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Decoded::Identity(tap) => tap.poll_read_into(cx, buf),
            Decoded::Gzip(d) => Pin::new(d).poll_read(cx, buf),
            Decoded::Zlib(d) => Pin::new(d).poll_read(cx, buf),
            Decoded::RawDeflate(d) => Pin::new(d).poll_read(cx, buf),
            Decoded::Brotli(d) => Pin::new(d).poll_read(cx, buf),
            Decoded::Zstd(d) => Pin::new(d).poll_read(cx, buf),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The tap: pulls frames from the origin body, keeps them as received, and lends their bytes to the decoder.

/// An [`AsyncBufRead`] over a body that keeps every frame it pulls, so they can be replayed unchanged.
struct Tap<B> {
    body: B,
    /// The body returned its end: it must not be polled again.
    ended: bool,
    /// Every frame pulled, in order (data and trailers).
    held: Vec<Frame<Bytes>>,
    held_bytes: usize,
    /// No frame is pulled once `held_bytes` reaches this.
    limit: usize,
    limit_hit: bool,
    /// Read position: index into `held` and offset into that frame's data.
    next: usize,
    offset: usize,
    /// The body's own error; once set, every read fails.
    error: Option<BoxError>,
    failed: bool,
}

impl<B> Tap<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn new(body: B, limit: usize) -> Self {
        Tap {
            body,
            ended: false,
            held: Vec::new(),
            held_bytes: 0,
            limit,
            limit_hit: false,
            next: 0,
            offset: 0,
            error: None,
            failed: false,
        }
    }

    /// Pulls one more frame into `held`; `Ok(false)` at the end of the body.
    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.failed {
            return Poll::Ready(Err(io::Error::other("origin body failed")));
        }
        if self.ended {
            return Poll::Ready(Ok(false));
        }
        if self.held_bytes >= self.limit {
            // An io error ends the decoder's read; `limit_hit` tells it apart from a corrupt stream.
            self.limit_hit = true;
            return Poll::Ready(Err(io::Error::other("encoded prefix limit reached")));
        }
        match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            None => {
                self.ended = true;
                Poll::Ready(Ok(false))
            }
            Some(Ok(frame)) => {
                self.held_bytes = self.held_bytes.saturating_add(frame.data_ref().map_or(0, Bytes::len));
                self.held.push(frame);
                Poll::Ready(Ok(true))
            }
            Some(Err(error)) => {
                self.error = Some(error.into());
                self.failed = true;
                Poll::Ready(Err(io::Error::other("origin body failed")))
            }
        }
    }

    /// The first `n` bytes of the body (fewer if it is shorter or fails), without consuming them.
    fn poll_peek(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<io::Result<Vec<u8>>> {
        loop {
            let mut head: Vec<u8> = Vec::with_capacity(n);
            for data in self.held.iter().filter_map(Frame::data_ref) {
                head.extend(data.iter().take(n - head.len()));
            }
            if head.len() >= n || !ready!(self.poll_pull(cx))? {
                return Poll::Ready(Ok(head));
            }
        }
    }

    /// Advances to a held frame with unread data, pulling frames as needed; `false` at the end of the body.
    fn poll_ready_data(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            match self.held.get(self.next) {
                Some(frame) if frame.data_ref().is_some_and(|d| self.offset < d.len()) => {
                    return Poll::Ready(Ok(true));
                }
                Some(_) => {
                    self.next += 1;
                    self.offset = 0;
                }
                None => {
                    if !ready!(self.poll_pull(cx))? {
                        return Poll::Ready(Ok(false));
                    }
                }
            }
        }
    }

    /// The unread bytes of the current frame (empty at the end).
    fn unread(&self) -> &[u8] {
        let data = self.held.get(self.next).and_then(Frame::data_ref);
        data.and_then(|d| d.get(self.offset..)).unwrap_or_default()
    }

    /// Plain `AsyncRead` for the identity coding: one frame's worth at most, so nothing is pulled early.
    fn poll_read_into(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if ready!(self.poll_ready_data(cx))? {
            let unread = self.unread();
            let n = unread.len().min(buf.remaining());
            buf.put_slice(&unread[..n]);
            self.offset += n;
        }
        Poll::Ready(Ok(()))
    }

    fn take_error(&mut self) -> Option<BoxError> {
        self.error.take()
    }

    /// The held frames followed by whatever the body has not yet given.
    fn into_body(self) -> PrefixedBody<B> {
        PrefixedBody {
            held: VecDeque::from(self.held),
            held_bytes: self.held_bytes,
            rest: if self.ended { None } else { Some(self.body) },
        }
    }
}

/// Required by [`AsyncBufRead`]; the decoders read through `poll_fill_buf`.
impl<B> AsyncRead for Tap<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_into(cx, buf)
    }
}

impl<B> AsyncBufRead for Tap<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.poll_ready_data(cx))?;
        Poll::Ready(Ok(this.unread()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.offset = this.offset.saturating_add(amt);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The delivered body

/// The body handed back by [`scan_head`]: the held frames exactly as received, then the rest of the original body.
pub struct PrefixedBody<B> {
    held: VecDeque<Frame<Bytes>>,
    held_bytes: usize,
    /// `None` once the original body has ended (it is never polled after its end).
    rest: Option<B>,
}

impl<B> PrefixedBody<B> {
    /// Encoded bytes held in front of the remainder (what the scan read).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }
}

impl<B> Body for PrefixedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(frame) = this.held.pop_front() {
            this.held_bytes -= frame.data_ref().map_or(0, Bytes::len).min(this.held_bytes);
            return Poll::Ready(Some(Ok(frame)));
        }
        let Some(rest) = this.rest.as_mut() else { return Poll::Ready(None) };
        let polled = ready!(Pin::new(rest).poll_frame(cx));
        if !matches!(polled, Some(Ok(_))) {
            this.rest = None;
        }
        Poll::Ready(polled.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held = u64::try_from(self.held_bytes).unwrap_or(u64::MAX);
        let Some(rest) = self.rest.as_ref() else { return SizeHint::with_exact(held) };
        let inner = rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(held));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held).max(hint.lower()));
        }
        hint
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The head scanner: lol_html handlers that collect metas and links and notice where the head ends.

/// What one fed chunk led to.
enum Step {
    More,
    HeadEnded,
    Failed(String),
}

/// Elements that may appear in a head; any other start tag implies `<body>` (HTML "in head" insertion mode).
const HEAD_ELEMENTS: &[&str] = &[
    "html", "head", "base", "basefont", "bgsound", "link", "meta", "noframes", "script", "style", "template", "title",
    "noscript",
];

/// Elements whose text belongs to them, not to an implied body.
const TEXT_HOLDERS: &[&str] = &["title", "script", "style", "noscript", "noframes"];

/// Shared between the handlers (lol_html needs `'static + Send` end-tag handlers, hence `Arc<Mutex>`).
#[derive(Default)]
struct ScanState {
    metas: Vec<(String, String)>,
    license_links: Vec<(String, Option<String>)>,
    /// The head is over: nothing more is collected.
    ended: bool,
    /// Inside `<template>`: inert content, neither collected nor ending the head.
    template_depth: u32,
    /// Inside an element whose text is not body text (`<title>`, `<script>`, ...).
    text_holder_depth: u32,
}

type Shared = Arc<Mutex<ScanState>>;

fn lock(state: &Shared) -> MutexGuard<'_, ScanState> {
    // Handlers never panic while holding the lock; a poisoned state is still the best record we have.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Returned from a handler to stop lol_html at once: nothing after the head is of interest.
#[derive(Debug, thiserror::Error)]
#[error("end of head")]
struct HeadEnded;

/// The output of the rewriter is not needed: the scan only observes.
fn discard(_: &[u8]) {}

/// A rewriter used only to observe; its output goes nowhere.
type Observer = HtmlRewriter<'static, fn(&[u8])>;

struct HeadScanner {
    rewriter: Option<Observer>,
    state: Shared,
    /// The first bytes, held until the byte-order mark (if any) is known.
    prelude: Option<Vec<u8>>,
}

impl HeadScanner {
    fn new(max_head_bytes: usize) -> Self {
        let state = Shared::default();
        let (on_element, on_text) = (state.clone(), state.clone());
        let settings = Settings::new_send()
            .append_element_content_handler(element!("*", move |el| on_start_tag(&on_element, el)))
            .append_document_content_handler(doc_text!(move |text| on_text_chunk(&on_text, text)))
            // Honour `<meta charset>` like a browser; never fail on lol_html's text-type ambiguity.
            .with_adjust_charset_on_meta_tag(true)
            .with_strict(false)
            // lol_html buffers a token split across chunks; with the decoded cap no honest page comes near this.
            .with_memory_settings(
                MemorySettings::new().with_max_allowed_memory_usage(max_head_bytes.saturating_add(64 * 1024)),
            );
        let rewriter = HtmlRewriter::new(settings, discard as fn(&[u8]));
        HeadScanner { rewriter: Some(rewriter), state, prelude: Some(Vec::new()) }
    }

    fn feed(&mut self, chunk: &[u8]) -> Step {
        let Some(prelude) = self.prelude.as_mut() else { return self.write(chunk) };
        prelude.extend_from_slice(chunk);
        if prelude.len() < 3 { Step::More } else { self.flush_prelude() }
    }

    /// The end of the document.
    fn finish(&mut self) -> Step {
        if let step @ (Step::HeadEnded | Step::Failed(_)) = self.flush_prelude() {
            return step;
        }
        let Some(rewriter) = self.rewriter.take() else { return Step::HeadEnded };
        self.interpret(rewriter.end())
    }

    /// Decides on the byte-order mark: UTF-8's is dropped (it is not body text), UTF-16 cannot be scanned.
    fn flush_prelude(&mut self) -> Step {
        let Some(prelude) = self.prelude.take() else { return Step::More };
        match prelude.as_slice() {
            [0xfe, 0xff, ..] | [0xff, 0xfe, ..] => {
                self.rewriter = None;
                Step::Failed("UTF-16 HTML cannot be scanned".to_owned())
            }
            [0xef, 0xbb, 0xbf, rest @ ..] => self.write(rest),
            all => self.write(all),
        }
    }

    fn write(&mut self, chunk: &[u8]) -> Step {
        let Some(rewriter) = self.rewriter.as_mut() else { return Step::HeadEnded };
        let result = rewriter.write(chunk);
        self.interpret(result)
    }

    fn interpret(&mut self, result: Result<(), RewritingError>) -> Step {
        let ended = lock(&self.state).ended;
        match result {
            _ if ended => {
                self.rewriter = None;
                Step::HeadEnded
            }
            Ok(()) => Step::More,
            Err(error) => {
                self.rewriter = None;
                Step::Failed(format!("HTML scan stopped: {error}"))
            }
        }
    }

    fn collect_into(self, signals: &mut HeadSignals) {
        let mut state = lock(&self.state);
        signals.metas = std::mem::take(&mut state.metas);
        signals.license_links = std::mem::take(&mut state.license_links);
    }
}

/// Every start tag: collect metas and licence links, count text holders and templates, and end the head at
/// `</head>` or at the first element that only a body can hold.
fn on_start_tag(state: &Shared, el: &mut Element<'_, '_>) -> HandlerResult {
    let name = el.tag_name();
    let mut st = lock(state);
    if st.ended {
        return Err(HeadEnded.into());
    }
    if st.template_depth > 0 {
        if name == "template" {
            st.template_depth += 1;
            drop(st);
            on_end(el, state, |st| st.template_depth = st.template_depth.saturating_sub(1))?;
        }
        return Ok(());
    }
    match name.as_str() {
        "meta" => collect_meta(&mut st, el),
        "link" => collect_license_link(&mut st, el),
        "head" => {
            drop(st);
            on_end(el, state, |st| st.ended = true)?;
        }
        "template" => {
            st.template_depth += 1;
            drop(st);
            on_end(el, state, |st| st.template_depth = st.template_depth.saturating_sub(1))?;
        }
        holder if TEXT_HOLDERS.contains(&holder) => {
            st.text_holder_depth += 1;
            drop(st);
            on_end(el, state, |st| st.text_holder_depth = st.text_holder_depth.saturating_sub(1))?;
        }
        other if HEAD_ELEMENTS.contains(&other) => {}
        _ => {
            st.ended = true;
            return Err(HeadEnded.into());
        }
    }
    Ok(())
}

/// Runs `update` on the state when `el`'s end tag is seen; `</head>` ending the head stops the scan there.
fn on_end(el: &mut Element<'_, '_>, state: &Shared, update: fn(&mut ScanState)) -> HandlerResult {
    let Some(handlers) = el.end_tag_handlers() else {
        // No end tag possible (self-closing in foreign content): undo at once.
        update(&mut lock(state));
        return Ok(());
    };
    let state = state.clone();
    handlers.push(Box::new(move |_: &mut EndTag<'_>| {
        let mut st = lock(&state);
        update(&mut st);
        if st.ended { Err(HeadEnded.into()) } else { Ok(()) }
    }));
    Ok(())
}

/// Non-whitespace text outside the head's text holders implies `<body>` (as a browser's parser decides).
fn on_text_chunk(state: &Shared, text: &mut TextChunk<'_>) -> HandlerResult {
    let mut st = lock(state);
    if st.ended {
        return Err(HeadEnded.into());
    }
    let is_body_text = text.as_str().bytes().any(|b| !b.is_ascii_whitespace());
    if is_body_text && st.template_depth == 0 && st.text_holder_depth == 0 {
        st.ended = true;
        return Err(HeadEnded.into());
    }
    Ok(())
}

fn collect_meta(st: &mut ScanState, el: &Element<'_, '_>) {
    let (Some(name), Some(content)) = (attribute(el, "name"), attribute(el, "content")) else { return };
    let name = name.trim_ascii().to_ascii_lowercase();
    if !name.is_empty() {
        st.metas.push((name, content));
    }
}

fn collect_license_link(st: &mut ScanState, el: &Element<'_, '_>) {
    let rel = attribute(el, "rel").unwrap_or_default();
    if !rel.split_ascii_whitespace().any(|token| token.eq_ignore_ascii_case("license")) {
        return;
    }
    let Some(href) = attribute(el, "href") else { return };
    let href = href.trim_ascii();
    if !href.is_empty() {
        let kind = attribute(el, "type").map(|t| t.trim_ascii().to_owned());
        st.license_links.push((href.to_owned(), kind));
    }
}

/// An attribute's value as a browser reads it. lol_html hands values over as written, entities
/// and all, but `content="&#110;oai"` means `noai` to every browser: reading it raw would let a
/// page's opt-out (or its licence URL, `?a=1&amp;b=2`) go unseen.
fn attribute(el: &Element<'_, '_>, name: &str) -> Option<String> {
    el.get_attribute(name).map(|value| decode_character_references(&value))
}

/// Decodes numeric character references (`&#44;`, `&#x6E;`, the `;` optional as in HTML) and the
/// named ones a value could need (`&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&nbsp;`); any other `&`
/// stays as written, as browsers keep an unknown one.
fn decode_character_references(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (decoded, len) = character_reference(rest).unwrap_or(('&', 1));
        out.push(decoded);
        rest = rest.get(len..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// The character a reference at the start of `text` (which starts with `&`) stands for, and the
/// reference's length in bytes.
fn character_reference(text: &str) -> Option<(char, usize)> {
    const NAMED: [(&str, char); 6] =
        [("amp;", '&'), ("lt;", '<'), ("gt;", '>'), ("quot;", '"'), ("apos;", '\''), ("nbsp;", '\u{a0}')];
    let body = text.strip_prefix('&')?;
    let Some(number) = body.strip_prefix('#') else {
        return NAMED.iter().find(|(name, _)| body.starts_with(name)).map(|&(name, c)| (c, 1 + name.len()));
    };
    let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, 16, "&#x".len()),
        None => (number, 10, "&#".len()),
    };
    let len = digits.bytes().take_while(|&b| char::from(b).is_digit(radix)).count();
    if len == 0 {
        return None;
    }
    // HTML: NUL, surrogates and values beyond Unicode (however many digits) read as U+FFFD.
    let code = digits.get(..len).and_then(|d| u32::from_str_radix(d, radix).ok());
    let decoded = code.and_then(char::from_u32).filter(|&c| c != '\0').unwrap_or('\u{fffd}');
    let semicolon = usize::from(digits.get(len..).is_some_and(|after| after.starts_with(';')));
    Some((decoded, prefix + len + semicolon))
}

#[cfg(test)]
mod tests;
