//! Registry files: JSON Lines and CSV, parsed all-or-nothing.
//!
//! `consentry registry import PATH` and the JSON Lines feeds hand whole files to this module. A
//! file is either taken completely or not at all: a half-applied import would leave the operator
//! guessing which objections are in force, so [`parse`] returns either every entry (with the line
//! it came from) or every problem, each located by its physical line and, where known, its field.
//! Operators fix a broken file in one pass instead of one error per attempt.
//!
//! - JSON Lines: one [`EntryDraft`] object per line; blank lines and lines starting with `#` are
//!   skipped.
//! - CSV: a header row naming the columns (the JSON field names, case-insensitive), one entry per
//!   row; an empty cell leaves the field out; `paths` and `purposes` hold several values separated
//!   by `|` or whitespace; blank lines, rows of empty cells and lines starting with `#` are skipped.
//!
//! Every entry goes through [`EntryDraft::validate`], so both formats accept exactly the same
//! entries. Ids must be unique within a file. At most [`MAX_REPORTED_PROBLEMS`] problems are
//! listed (a broken million-line file must not produce a gigabyte of errors), followed by a count
//! of the rest.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::entry::{EntryDraft, ValidEntry};

/// Problems listed before the rest are only counted.
pub const MAX_REPORTED_PROBLEMS: usize = 1000;

const BOM: char = '\u{feff}';

/// A registry file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl Format {
    /// From the file name: `.csv` → Csv, `.jsonl`/`.ndjson`/`.json` → JsonLines; otherwise sniff the
    /// first line that is neither blank nor a `#` comment (starts with `{` → JsonLines, else Csv).
    pub fn detect(path: &Path, text: &str) -> Format {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson" | "json") => Format::JsonLines,
            _ => {
                let first = strip_bom(text).lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
                match first {
                    Some(line) if line.starts_with('{') => Format::JsonLines,
                    _ => Format::Csv,
                }
            }
        }
    }
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    /// 1-based physical line (for CSV, the line where the record starts).
    pub line: usize,
    /// The field (or CSV column) concerned, when there is one.
    pub field: Option<String>,
    pub problem: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: `{field}`: {}", self.line, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

/// Every valid entry with its line number, or every problem (never both).
pub fn parse(text: &str, format: Format) -> Result<Vec<(usize, ValidEntry)>, Vec<LineError>> {
    match format {
        Format::JsonLines => parse_json_lines(text),
        Format::Csv => parse_csv(text),
    }
}

/// [`parse`] for raw file contents: strips a UTF-8 byte order mark and rejects anything that is
/// not UTF-8, naming the line of the first invalid byte.
pub fn parse_bytes(bytes: &[u8], format: Format) -> Result<Vec<(usize, ValidEntry)>, Vec<LineError>> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, format),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = 1 + count_newlines(valid);
            let column = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1) + 1;
            Err(vec![LineError {
                line,
                field: None,
                problem: format!("not valid UTF-8 (byte {column} of the line); save the file as UTF-8"),
            }])
        }
    }
}

/// JSON Lines: one entry object per line; blank lines and `#` comments are skipped.
pub fn parse_json_lines(text: &str) -> Result<Vec<(usize, ValidEntry)>, Vec<LineError>> {
    let mut outcome = Outcome::default();
    // `lines` also strips the `\r` of CRLF files, and counts lines the way editors do.
    for (index, raw) in strip_bom(text).lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match json_draft(raw) {
            Ok(draft) => outcome.entry(line, draft),
            Err((field, problem)) => outcome.problem(line, field, problem),
        }
    }
    outcome.finish()
}

/// One JSON Lines entry, or the field concerned (when known) and the problem.
fn json_draft(raw: &str) -> Result<EntryDraft, (Option<String>, String)> {
    // serde would happily build a struct from a JSON array (fields by position); an entry whose
    // meaning depends on field order is a trap, so only objects are accepted.
    if !raw.trim_start().starts_with('{') {
        return Err((None, "invalid JSON: not a JSON object (each line holds one entry, {\"creator\": ...})".into()));
    }
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let draft: EntryDraft = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let error = e.into_inner();
        let message = without_position(&error);
        if !error.is_data() {
            return (None, format!("invalid JSON: {message}"));
        }
        // The path names the field for wrong types and unknown fields; duplicate fields are
        // reported at the object itself and named only in serde's message.
        let field = path.split(['.', '[']).next().filter(|f| !f.is_empty()).map(str::to_string);
        match field {
            Some(field) if path != field => (Some(field), format!("in {path}: {message}")),
            Some(field) => (Some(field), message),
            None => (backticked_field(&message), message),
        }
    })?;
    deserializer.end().map_err(|e| (None, format!("invalid JSON: {}", without_position(&e))))?;
    Ok(draft)
}

/// serde_json's message with its " at line 1 column N" turned into " at column N": every
/// entry is parsed on its own, so its line is always 1 and would contradict the file's line.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&suffix) {
        Some(bare) if error.line() > 0 => format!("{bare} at column {}", error.column()),
        _ => message,
    }
}

/// The field named in "unknown field `x`" / "duplicate field `x`".
fn backticked_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("duplicate field `"))?;
    rest.split('`').next().map(str::to_string)
}

/// CSV with a header row; see the module documentation.
///
/// Record boundaries come from the `csv` crate, but line numbers and quoting are checked here
/// on the raw text of each record: `Position::line()` points at any blank or comment lines the
/// reader skipped before a record and lags one line behind in CRLF files, and the reader
/// silently accepts stray quotes (`ab"c`, `"ab"c`, an unclosed `"` that swallows the rest of
/// the file), which would turn a typo into a wrong objection instead of an error.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, ValidEntry)>, Vec<LineError>> {
    let bytes = strip_bom(text).as_bytes();
    // Field counts are checked here against the header rather than by the reader (flexible
    // mode): the reader compares against the first record it sees, so a whitespace-only line
    // before the header would make the header itself "malformed", and the message can then
    // speak of the header.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::default();
    let mut outcome = Outcome::default();
    let mut columns: Option<Vec<Column>> = None;
    loop {
        let start = byte_offset(reader.position(), bytes.len());
        let read = reader.read_record(&mut record);
        let end = byte_offset(reader.position(), bytes.len()).max(start);
        let (skipped, raw) = skip_blank_and_comment_lines(&bytes[start..end]);
        let line = lines.line_at(bytes, start + skipped);
        match read {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                outcome.problem(line, None, format!("malformed CSV: {e}"));
                continue;
            }
        }
        // The reader ends a record at a carriage return without a line feed, which no line count
        // sees: two records would then share a line number (found by AFL++).
        if raw.last() == Some(&b'\r') && bytes.get(end).is_some_and(|&next| next != b'\n') {
            let problem = "malformed CSV: a carriage return without a line feed ends a record inside this line; \
                           save the file with LF or CRLF line endings";
            outcome.problem(line, None, problem.into());
            if columns.is_none() {
                return outcome.finish();
            }
            continue;
        }
        if let Err((offset, problem)) = check_quotes(raw) {
            let problem_line = line + count_newlines(&raw[..offset]);
            let problem = match problem_line == line {
                true => format!("malformed CSV: {problem}"),
                false => format!("malformed CSV: {problem} (on line {problem_line})"),
            };
            outcome.problem(line, None, problem);
            if columns.is_none() {
                return outcome.finish();
            }
            continue;
        }
        // Spreadsheets export trailing empty rows as `,,,`; a whitespace-only line reads as one
        // empty cell. Neither is an entry.
        if record.iter().all(str::is_empty) {
            continue;
        }
        let Some(columns) = &columns else {
            match header(&record, line) {
                Ok(parsed) => columns = Some(parsed),
                Err(errors) => {
                    errors.into_iter().for_each(|e| outcome.push(e));
                    return outcome.finish();
                }
            }
            continue;
        };
        if record.len() != columns.len() {
            let problem =
                format!("malformed CSV: {} cells where the header has {} columns", record.len(), columns.len());
            outcome.problem(line, None, problem);
            continue;
        }
        let draft = csv_draft(columns, &record, |field, problem| outcome.problem(line, Some(field.into()), problem));
        outcome.entry(line, draft);
    }
    outcome.finish()
}

/// A CSV column: one [`EntryDraft`] field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    Creator,
    Contact,
    Url,
    Domain,
    IncludeSubdomains,
    Paths,
    Purposes,
}

impl Column {
    const ALL: [Column; 8] = [
        Column::Id,
        Column::Creator,
        Column::Contact,
        Column::Url,
        Column::Domain,
        Column::IncludeSubdomains,
        Column::Paths,
        Column::Purposes,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Creator => "creator",
            Column::Contact => "contact",
            Column::Url => "url",
            Column::Domain => "domain",
            Column::IncludeSubdomains => "include_subdomains",
            Column::Paths => "paths",
            Column::Purposes => "purposes",
        }
    }
}

/// The columns of a header row, or every problem with it.
fn header(record: &csv::StringRecord, line: usize) -> Result<Vec<Column>, Vec<LineError>> {
    let mut errors = Vec::new();
    let problem = |field: Option<&str>, problem: String| LineError { line, field: field.map(str::to_string), problem };
    let mut columns = Vec::with_capacity(record.len());
    for (index, raw) in record.iter().enumerate() {
        let name = raw.to_lowercase();
        if name.is_empty() {
            errors.push(problem(None, format!("column {} of the header has no name", index + 1)));
            continue;
        }
        let Some(column) = Column::ALL.into_iter().find(|c| c.name() == name) else {
            let expected: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            let hint = "the first row must be a header naming the columns";
            errors.push(problem(Some(raw), format!("unknown column {raw:?} ({hint}: {})", expected.join(", "))));
            continue;
        };
        if columns.contains(&column) {
            errors.push(problem(Some(column.name()), "column appears twice in the header".into()));
            continue;
        }
        columns.push(column);
    }
    // Missing columns are only worth mentioning once the names themselves are right: a
    // misspelt `domian` already explains the missing `domain`.
    if errors.is_empty() {
        if !columns.contains(&Column::Creator) {
            errors.push(problem(Some("creator"), "the header has no `creator` column".into()));
        }
        if !columns.contains(&Column::Url) && !columns.contains(&Column::Domain) {
            errors.push(problem(Some("domain"), "the header needs a `url` or a `domain` column".into()));
        }
    }
    if errors.is_empty() { Ok(columns) } else { Err(errors) }
}

/// The draft a CSV row describes; cells that cannot be read are reported and left out, so the
/// rest of the row is still validated.
fn csv_draft(
    columns: &[Column],
    record: &csv::StringRecord,
    mut problem: impl FnMut(&'static str, String),
) -> EntryDraft {
    let mut draft = EntryDraft::default();
    for (&column, cell) in columns.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        match column {
            Column::Id => draft.id = Some(cell.to_string()),
            Column::Creator => draft.creator = Some(cell.to_string()),
            Column::Contact => draft.contact = Some(cell.to_string()),
            Column::Url => draft.url = Some(cell.to_string()),
            Column::Domain => draft.domain = Some(cell.to_string()),
            Column::IncludeSubdomains => match parse_bool(cell) {
                Some(value) => draft.include_subdomains = Some(value),
                None => problem(column.name(), format!("{cell:?} is not true or false (also yes/no, 1/0)")),
            },
            Column::Paths => draft.paths = Some(split_list(cell)),
            Column::Purposes => draft.purposes = Some(split_list(cell)),
        }
    }
    draft
}

fn parse_bool(cell: &str) -> Option<bool> {
    match cell.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Several values in one cell: valid robots patterns and purpose names contain neither `|` nor
/// whitespace, so both can separate them (`/a|/b`, `/a /b`, `ai-train | tdm`).
fn split_list(cell: &str) -> Vec<String> {
    cell.split(|c: char| c == '|' || c.is_whitespace()).filter(|v| !v.is_empty()).map(str::to_string).collect()
}

/// Skips what the CSV reader skips before a record (line terminators and `#` comment lines),
/// returning how many bytes that was and the record's own text.
fn skip_blank_and_comment_lines(span: &[u8]) -> (usize, &[u8]) {
    let mut at = 0;
    while let Some(&b) = span.get(at) {
        match b {
            b'\r' | b'\n' => at += 1,
            b'#' => at += span[at..].iter().position(|&b| b == b'\n').map_or(span.len() - at, |nl| nl + 1),
            _ => break,
        }
    }
    (at, &span[at..])
}

/// Strict RFC 4180 quoting on one record's raw text, with the reader's rules (a quote opens a
/// cell only as its very first character): the offset and description of the first problem.
fn check_quotes(raw: &[u8]) -> Result<(), (usize, &'static str)> {
    #[derive(Clone, Copy)]
    enum State {
        CellStart,
        Unquoted,
        Quoted {
            opened: usize,
        },
        /// A quote inside a quoted cell: closing, or the first half of `""`.
        QuoteInQuoted,
        AfterQuoted,
    }
    use State::*;
    let mut state = CellStart;
    for (at, &b) in raw.iter().enumerate() {
        state = match (state, b) {
            (CellStart | Unquoted | QuoteInQuoted | AfterQuoted, b'\r' | b'\n') => return Ok(()),
            (CellStart | Unquoted | QuoteInQuoted | AfterQuoted, b',') => CellStart,
            (CellStart, b'"') => Quoted { opened: at },
            (Unquoted, b'"') => {
                return Err((
                    at,
                    "a `\"` inside an unquoted cell (quote the whole cell, with no space before the opening \
                     quote, and double every quote inside it)",
                ));
            }
            (CellStart | Unquoted, _) => Unquoted,
            (Quoted { .. }, b'"') => QuoteInQuoted,
            (Quoted { opened }, _) => Quoted { opened },
            (QuoteInQuoted, b'"') => Quoted { opened: at },
            (QuoteInQuoted | AfterQuoted, b' ' | b'\t') => AfterQuoted,
            (QuoteInQuoted | AfterQuoted, _) => {
                return Err((at, "text after the closing quote of a cell (double a quote meant inside the cell)"));
            }
        };
    }
    match state {
        Quoted { opened } => Err((opened, "a quoted cell is never closed (a missing `\"`)")),
        _ => Ok(()),
    }
}

fn byte_offset(position: &csv::Position, len: usize) -> usize {
    usize::try_from(position.byte()).map_or(len, |b| b.min(len))
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Line numbers of increasing byte offsets, counting each newline once.
struct LineCounter {
    byte: usize,
    line: usize,
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter { byte: 0, line: 1 }
    }
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], byte: usize) -> usize {
        if byte > self.byte {
            self.line += count_newlines(&bytes[self.byte..byte]);
            self.byte = byte;
        }
        self.line
    }
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// What a file has produced so far: entries while it is clean, problems (capped) once it is not.
#[derive(Default)]
struct Outcome {
    entries: Vec<(usize, ValidEntry)>,
    problems: Vec<LineError>,
    /// Problems beyond the cap: how many, and the line of the first.
    unlisted: usize,
    first_unlisted_line: usize,
    /// Each id's first line.
    ids: HashMap<String, usize>,
}

impl Outcome {
    fn push(&mut self, error: LineError) {
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(error);
        } else {
            if self.unlisted == 0 {
                self.first_unlisted_line = error.line;
            }
            self.unlisted += 1;
        }
    }

    fn problem(&mut self, line: usize, field: Option<String>, problem: String) {
        self.push(LineError { line, field, problem });
    }

    fn failed(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Validates one draft and checks its id against the earlier ones.
    fn entry(&mut self, line: usize, draft: EntryDraft) {
        let id = draft.id.clone();
        let (entry, id_valid) = match draft.validate() {
            Ok(entry) => (Some(entry), true),
            Err(errors) => {
                let id_valid = !errors.iter().any(|e| e.field == "id");
                for e in errors {
                    self.problem(line, Some(e.field.to_string()), e.problem);
                }
                (None, id_valid)
            }
        };
        // An entry that fails for another reason still claims its id, so the operator learns
        // about a clash now rather than after fixing the first problem.
        if let Some(id) = id.filter(|_| id_valid) {
            if let Some(&first) = self.ids.get(&id) {
                self.problem(line, Some("id".into()), format!("duplicate id {id:?} (first used on line {first})"));
                return;
            }
            self.ids.insert(id, line);
        }
        // A failed file returns no entries, so stop keeping them.
        if let Some(entry) = entry
            && !self.failed()
        {
            self.entries.push((line, entry));
        }
    }

    fn finish(mut self) -> Result<Vec<(usize, ValidEntry)>, Vec<LineError>> {
        if self.unlisted > 0 {
            let problem = format!("…and {} more problems from this line on (not listed)", self.unlisted);
            self.problems.push(LineError { line: self.first_unlisted_line, field: None, problem });
        }
        if self.failed() {
            return Err(self.problems);
        }
        if self.entries.is_empty() {
            return Err(vec![LineError { line: 1, field: None, problem: "no entries".into() }]);
        }
        Ok(self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_carriage_return_inside_a_line_is_refused_naming_the_line() {
        let text = "creator,domain\n\tunclosed,x.example\rpk,ok.example\n";
        let problems = parse_csv(text).expect_err("refused");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 2);
        assert!(problems[0].problem.contains("carriage return without a line feed"), "{}", problems[0]);
        // CRLF files, and a last line ending in a lone CR, are read as before.
        assert!(parse_csv("creator,domain\r\nA,a.example\r\nB,b.example\r").is_ok());
    }
    use crate::decide::Purpose;
    use crate::registry::entry::EntryTarget;

    fn problems_of(result: Result<Vec<(usize, ValidEntry)>, Vec<LineError>>) -> Vec<LineError> {
        result.expect_err("should fail")
    }

    /// (line, field) of each problem, for compact assertions.
    fn located(errors: &[LineError]) -> Vec<(usize, Option<&str>)> {
        errors.iter().map(|e| (e.line, e.field.as_deref())).collect()
    }

    const JSONL: &str = r#"# registry export
{"id":"e1","creator":"Ann","contact":"ann@example.org","domain":"Example.ORG","include_subdomains":false,"paths":["/art/*","/img/$"],"purposes":["ai-train","tdm"]}

{"creator":"Bo","url":"https://bo.example/portfolio/a.png"}
  # indented comment
{"id":"e3","creator":"Cy, \"the\" painter","domain":"cy.example"}
"#;

    const CSV: &str = "\
ID , Creator,contact,domain,url,Include_Subdomains,paths,purposes
e1,Ann,ann@example.org,Example.ORG,,no,/art/* | /img/$,ai-train|tdm
,Bo,,,https://bo.example/portfolio/a.png,,,
e3,\"Cy, \"\"the\"\" painter\",,cy.example,,,,
";

    #[test]
    fn json_lines_and_csv_give_the_same_entries() {
        let json = parse(JSONL, Format::JsonLines).expect("valid JSON Lines");
        let csv = parse(CSV, Format::Csv).expect("valid CSV");
        let lines = |v: &[(usize, ValidEntry)]| v.iter().map(|(l, _)| *l).collect::<Vec<_>>();
        assert_eq!(lines(&json), [2, 4, 6]);
        assert_eq!(lines(&csv), [2, 3, 4]);
        let entries = |v: Vec<(usize, ValidEntry)>| v.into_iter().map(|(_, e)| e).collect::<Vec<_>>();
        let json = entries(json);
        assert_eq!(json, entries(csv));
        assert_eq!(
            json[0].target,
            EntryTarget::Domain {
                domain: "example.org".into(),
                include_subdomains: false,
                paths: vec!["/art/*".into(), "/img/$".into()],
            }
        );
        assert_eq!(json[0].purposes, [Purpose::AiTrain, Purpose::Tdm]);
        assert_eq!(json[1].id, None);
        assert_eq!(json[2].creator, "Cy, \"the\" painter");
    }

    #[test]
    fn formats_are_detected_by_name_then_content() {
        let detect = |name: &str, text: &str| Format::detect(Path::new(name), text);
        assert_eq!(detect("r.CSV", "{"), Format::Csv);
        assert_eq!(detect("r.jsonl", "creator,domain"), Format::JsonLines);
        assert_eq!(detect("r.ndjson", ""), Format::JsonLines);
        assert_eq!(detect("r.json", ""), Format::JsonLines);
        assert_eq!(detect("registry", "\u{feff}\n# hi\n  {\"creator\":\"a\"}"), Format::JsonLines);
        assert_eq!(detect("registry.txt", "\ncreator,domain\n"), Format::Csv);
        assert_eq!(detect("registry", ""), Format::Csv);
    }

    #[test]
    fn json_lines_report_every_problem_with_line_and_field() {
        let text = [
            r#"{"creator":"ok","domain":"ok.example"}"#,
            r#"{"creator":"a","domain":"x"}"#,
            r#"not json"#,
            r#"{"creator":"a","domain":"a.example","colour":"red"}"#,
            r#"{"creator":"a","domain":"a.example","include_subdomains":"yes"}"#,
            r#"{"creator":"a","domain":"a.example","paths":["/a",5]}"#,
            "",
            r#"["a","b"]"#,
            r#"{"creator":"a","domain":"a.example"} {}"#,
            r#"{"creator":"a","creator":"b","domain":"a.example"}"#,
            r#"{"id":"bad id","domain":"*.example.com","purposes":["teleport"]}"#,
            r#"{"creator":"a","domain":"#,
        ]
        .join("\n");
        let errors = problems_of(parse_json_lines(&text));
        assert_eq!(
            located(&errors),
            [
                (2, Some("domain")),
                (3, None),
                (4, Some("colour")),
                (5, Some("include_subdomains")),
                (6, Some("paths")),
                (8, None),
                (9, None),
                (10, Some("creator")),
                (11, Some("id")),
                (11, Some("creator")),
                (11, Some("domain")),
                (11, Some("purposes")),
                (12, None),
            ],
            "{errors:#?}"
        );
        assert!(errors[1].problem.starts_with("invalid JSON: not a JSON object"), "{errors:?}");
        assert!(errors[2].problem.starts_with("unknown field `colour`"), "{errors:?}");
        assert!(errors[3].problem.contains("expected a boolean at column"), "{errors:?}");
        assert!(errors[4].problem.starts_with("in paths[1]: invalid type: integer `5`"), "{errors:?}");
        assert!(errors[5].problem.contains("not a JSON object"), "{errors:?}");
        assert!(errors[6].problem.contains("trailing characters"), "{errors:?}");
        assert!(errors[7].problem.starts_with("duplicate field `creator`"), "{errors:?}");
        assert!(errors[12].problem.starts_with("invalid JSON: EOF"), "{errors:?}");
        assert_eq!(errors[0].to_string(), format!("line 2: `domain`: {}", errors[0].problem));
        assert_eq!(errors[1].to_string(), format!("line 3: {}", errors[1].problem));
    }

    #[test]
    fn csv_reports_every_problem_with_line_and_field() {
        let text = "\
creator,domain,include_subdomains,paths,purposes
ok,ok.example,,,
a,x,maybe,private,teleport
a,a.example
,,,,
a,a.example,,,,
  
a,a.example,TRUE,/a /b,search
";
        let errors = problems_of(parse_csv(text));
        assert_eq!(
            located(&errors),
            [
                (3, Some("include_subdomains")),
                (3, Some("domain")),
                (3, Some("paths")),
                (3, Some("purposes")),
                (4, None),
                (6, None),
            ],
            "{errors:#?}"
        );
        assert!(errors[0].problem.contains("\"maybe\""), "{errors:?}");
        assert!(errors[4].problem.contains("2 cells where the header has 5 columns"), "{errors:?}");
        assert!(errors[5].problem.contains("6 cells"), "{errors:?}");
    }

    #[test]
    fn csv_headers_are_checked_first() {
        let errors = problems_of(parse_csv("Creator, Domian ,colour\nAnn,ann.example,red\n"));
        assert_eq!(located(&errors), [(1, Some("Domian")), (1, Some("colour"))], "{errors:#?}");
        assert!(errors[0].problem.contains("unknown column \"Domian\""), "{errors:?}");

        let errors = problems_of(parse_csv("contact,paths\nx,/a\n"));
        assert_eq!(located(&errors), [(1, Some("creator")), (1, Some("domain"))], "{errors:#?}");

        let errors = problems_of(parse_csv("creator,domain,DOMAIN,\n"));
        assert_eq!(located(&errors), [(1, Some("domain")), (1, None)], "{errors:#?}");

        // No header at all: the first entry is read as one and rejected.
        let errors = problems_of(parse_csv("Ann,ann.example\n"));
        assert!(errors[0].problem.contains("must be a header"), "{errors:?}");
    }

    #[test]
    fn csv_quoted_cells_keep_line_numbers_right() {
        let text = "creator,domain,contact\r\n\
\"Ann, \"\"A\"\"\",ann.example,\"first line\r\nsecond line\"\r\n\
\r\n\
# a comment, with a comma\r\n\
Bo,bo.example,\"multi\n\nline\"\r\n\
Cy,x,\r\n";
        let errors = problems_of(parse_csv(text));
        // Ann (line 2) and Bo (line 6) fail only on the newlines in `contact`; Cy is on line 9.
        assert_eq!(located(&errors), [(2, Some("contact")), (6, Some("contact")), (9, Some("domain"))], "{errors:#?}");

        // A multi-line cell that is valid (paths split on any whitespace), then the next entry.
        let text = "creator,domain,paths\n\"Ann, A\",ann.example,\"/a,\n/b\n\"\n\nBo,bo.example,\n";
        let parsed = parse_csv(text).expect("valid");
        assert_eq!(parsed.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 6]);
        assert_eq!(parsed[0].1.creator, "Ann, A");
        let EntryTarget::Domain { paths, .. } = &parsed[0].1.target else { panic!("domain entry") };
        assert_eq!(paths, &["/a,", "/b"]);
    }

    #[test]
    fn csv_bad_quotes_are_errors() {
        let text = "\
creator,domain
Ann \"A\" Smith,a.example
\"Bo\"x,b.example
 \"Cy\",c.example
\"Di\" ,d.example
\"Ed
,e.example
";
        let errors = problems_of(parse_csv(text));
        assert_eq!(located(&errors), [(2, None), (3, None), (4, None), (6, None)], "{errors:#?}");
        assert!(errors[0].problem.contains("inside an unquoted cell"), "{errors:?}");
        assert!(errors[1].problem.contains("after the closing quote"), "{errors:?}");
        assert!(errors[3].problem.contains("never closed"), "{errors:?}");

        let errors = problems_of(parse_csv("creator,domain\na,\"b.example\n\nc,d.example\n"));
        assert_eq!(located(&errors), [(2, None)], "{errors:#?}");

        let errors = problems_of(parse_csv("\"creator,domain\na,b.example\n"));
        assert_eq!(located(&errors), [(1, None)], "{errors:#?}");
    }

    #[test]
    fn duplicate_ids_name_the_first_line() {
        let text = "\
{\"id\":\"a\",\"creator\":\"x\",\"domain\":\"a.example\"}
{\"id\":\"b\",\"creator\":\"x\",\"domain\":\"b.example\"}
{\"id\":\"a\",\"creator\":\"x\",\"domain\":\"c.example\"}
{\"id\":\"b\",\"domain\":\"d.example\"}
";
        let errors = problems_of(parse_json_lines(text));
        assert_eq!(located(&errors), [(3, Some("id")), (4, Some("creator")), (4, Some("id"))], "{errors:#?}");
        assert_eq!(errors[0].problem, "duplicate id \"a\" (first used on line 1)");
        assert!(errors[2].problem.contains("line 2"), "{errors:?}");

        let errors = problems_of(parse_csv("id,creator,domain\na,x,a.example\n\na,y,b.example\n"));
        assert_eq!(located(&errors), [(4, Some("id"))], "{errors:#?}");
        assert!(errors[0].problem.contains("first used on line 2"), "{errors:?}");
    }

    #[test]
    fn files_without_entries_are_refused() {
        let no_entries = vec![LineError { line: 1, field: None, problem: "no entries".into() }];
        assert_eq!(parse_json_lines(""), Err(no_entries.clone()));
        assert_eq!(parse_json_lines("\n# only a comment\n   \n"), Err(no_entries.clone()));
        assert_eq!(parse_csv(""), Err(no_entries.clone()));
        assert_eq!(parse_csv("# comment\ncreator,domain\n\n,\n"), Err(no_entries.clone()));
    }

    #[test]
    fn bom_is_stripped_and_invalid_utf8_located() {
        let json = b"\xef\xbb\xbf{\"creator\":\"a\",\"domain\":\"a.example\"}\n";
        assert_eq!(parse_bytes(json, Format::JsonLines).expect("valid").len(), 1);
        let csv = b"\xef\xbb\xbfcreator,domain\r\na,a.example\r\n";
        assert_eq!(parse_bytes(csv, Format::Csv).expect("valid")[0].0, 2);
        assert_eq!(parse("\u{feff}creator,domain\na,a.example\n", Format::Csv).expect("valid").len(), 1);

        let bad = b"creator,domain\na,a.example\nb\xff,b.example\n";
        let errors = problems_of(parse_bytes(bad, Format::Csv));
        assert_eq!(located(&errors), [(3, None)], "{errors:#?}");
        assert!(errors[0].problem.contains("not valid UTF-8 (byte 2 of the line)"), "{errors:?}");
    }

    #[test]
    fn problems_are_capped_but_counted() {
        let mut text = String::from("{\"creator\":\"ok\",\"domain\":\"ok.example\"}\n");
        for _ in 0..1500 {
            text.push_str("{\"creator\":\"a\",\"domain\":\"nope\"}\n");
        }
        let errors = problems_of(parse_json_lines(&text));
        assert_eq!(errors.len(), MAX_REPORTED_PROBLEMS + 1);
        assert_eq!(errors[MAX_REPORTED_PROBLEMS - 1].line, MAX_REPORTED_PROBLEMS + 1);
        let last = &errors[MAX_REPORTED_PROBLEMS];
        assert_eq!(last.line, MAX_REPORTED_PROBLEMS + 2);
        assert_eq!(last.problem, "…and 500 more problems from this line on (not listed)");
    }
}
