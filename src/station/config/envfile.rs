//! The `.env` file, read the way python-dotenv (TrackAttendance's loader)
//! reads it, so a file written for the Python kiosk means the same here.
//!
//! Accepted, as python-dotenv accepts them:
//!
//! * `NAME=value` with an **unquoted value containing spaces**
//!   (`STATION_NAME=Main Gate`); surrounding whitespace is trimmed and
//!   ` # comment` after whitespace ends the value (`#` without a space
//!   before it is part of the value, as in `ADMIN_PIN=12#4`);
//! * `'single'` (literal, `\'` and `\\` only) and `"double"` quoted values
//!   (with `\n`, `\t`, `\"`, `\\` escapes), which may span lines;
//! * `export NAME=value`, blank lines, `# comment` lines, spaces around `=`;
//! * CRLF line ends and a UTF-8 byte-order mark at the start.
//!
//! Anything else is a [`EnvLineProblem`] naming the line and the fix, and
//! that line is skipped; the rest of the file is still read. A line that is
//! not UTF-8 (the caller decodes lossily, so it arrives with U+FFFD in it)
//! is reported as such, never as a permission problem.
//!
//! Differences from python-dotenv, on purpose: `${VAR}` is not expanded
//! (TrackAttendance's variables never use it), and a name without `=` is
//! reported instead of silently set to nothing.

use std::fmt;

/// One `NAME=value` read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    /// The variable name as written.
    pub name: String,
    /// The value, unquoted and unescaped.
    pub value: String,
    /// The 1-based line the entry starts on.
    pub line: usize,
}

/// A line that could not be read, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLineProblem {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl fmt::Display for EnvLineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a file held: its entries in order, and the lines that were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// Entries in file order (a later one with the same name wins).
    pub entries: Vec<EnvEntry>,
    /// Lines skipped, each with its fix.
    pub problems: Vec<EnvLineProblem>,
}

/// Decodes the bytes of a `.env` file: valid UTF-8 as is; otherwise each
/// invalid sequence becomes U+FFFD, which [`parse`] reports with its line.
#[must_use]
pub fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses the text of a `.env` file; see the module docs.
#[must_use]
pub fn parse(text: &str) -> EnvFile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().filter(|&c| c != '\r').collect();
    let mut parser = Parser { chars: &chars, pos: 0, line: 1 };
    let mut file = EnvFile::default();
    while parser.pos < chars.len() {
        let start_line = parser.line;
        let start = parser.pos;
        match parser.statement() {
            Ok(Some((name, value))) => file.entries.push(EnvEntry { name, value, line: start_line }),
            Ok(None) => {}
            Err(message) => {
                // Skip the rest of the line the statement started on.
                parser.pos = start;
                parser.line = start_line;
                parser.skip_line();
                file.problems.push(EnvLineProblem { line: start_line, message });
            }
        }
    }
    file
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    line: usize,
}

const FIX: &str = "write it as NAME=value (quote a value that starts with a quote, e.g. NAME=\"it's\")";

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn rest_of_line(&self) -> String {
        self.chars[self.pos..].iter().take_while(|&&c| c != '\n').collect()
    }

    /// One statement: a blank or comment line (`None`) or an entry.
    fn statement(&mut self) -> Result<Option<(String, String)>, String> {
        if self.rest_of_line().contains('\u{fffd}') {
            return Err("this line is not UTF-8 text (a byte the file's encoding cannot represent here); \
                        save the file as UTF-8, e.g. in Notepad: Save As… → Encoding: UTF-8"
                .to_owned());
        }
        self.skip_blanks();
        match self.peek() {
            None => return Ok(None),
            Some('\n') => {
                self.bump();
                return Ok(None);
            }
            Some('#') => {
                self.skip_line();
                return Ok(None);
            }
            _ => {}
        }
        if self.chars[self.pos..].starts_with(&['e', 'x', 'p', 'o', 'r', 't']) && matches!(self.chars.get(self.pos + 6), Some(' ' | '\t')) {
            self.pos += 6;
            self.skip_blanks();
        }
        let name = self.name()?;
        self.skip_blanks();
        if self.peek() != Some('=') {
            let rest = self.rest_of_line();
            return Err(if rest.trim().is_empty() || rest.trim_start().starts_with('#') {
                format!("{name} has no '=' and no value; write {name}=value, or delete the line")
            } else {
                format!("expected '=' after {name}; {FIX}")
            });
        }
        self.bump();
        self.skip_blanks();
        let value = if let Some(quote @ ('"' | '\'')) = self.peek() {
            self.bump();
            let value = self.quoted(quote)?;
            self.skip_blanks();
            match self.peek() {
                None => {}
                Some('\n') => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                Some(_) => {
                    return Err(format!(
                        "{name}: text after the closing quote ({:?}); put the whole value inside the quotes",
                        self.rest_of_line().trim()
                    ));
                }
            }
            value
        } else {
            let raw = self.rest_of_line();
            self.skip_line();
            unquoted(&raw)
        };
        Ok(Some((name, value)))
    }

    fn name(&mut self) -> Result<String, String> {
        if let Some(quote @ ('"' | '\'')) = self.peek() {
            // python-dotenv allows a quoted name; nobody writes one on purpose.
            self.bump();
            let name = self.quoted(quote)?;
            return Ok(name);
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '=' || c == '#' || c.is_whitespace() {
                break;
            }
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if name.is_empty() {
            return Err(format!("no variable name before '='; {FIX}"));
        }
        Ok(name)
    }

    fn quoted(&mut self, quote: char) -> Result<String, String> {
        let start_line = self.line;
        let mut value = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "the {} quote opened on line {start_line} is never closed; add the closing {quote}",
                        if quote == '"' { "double" } else { "single" }
                    ));
                }
                Some(c) if c == quote => return Ok(value),
                Some('\\') => match (quote, self.peek()) {
                    ('\'', Some(c @ ('\'' | '\\'))) | ('"', Some(c @ ('"' | '\\' | '\''))) => {
                        self.bump();
                        value.push(c);
                    }
                    ('"', Some('n')) => {
                        self.bump();
                        value.push('\n');
                    }
                    ('"', Some('t')) => {
                        self.bump();
                        value.push('\t');
                    }
                    ('"', Some('r')) => {
                        self.bump();
                        value.push('\r');
                    }
                    _ => value.push('\\'),
                },
                Some(c) => value.push(c),
            }
        }
    }
}

/// An unquoted value: ` #` starts a comment; surrounding whitespace goes.
fn unquoted(raw: &str) -> String {
    let mut end = raw.len();
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && i > 0 && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
            end = i;
            break;
        }
    }
    raw[..end].trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, String)> {
        let file = parse(text);
        assert!(file.problems.is_empty(), "{:?}", file.problems);
        file.entries.into_iter().map(|e| (e.name, e.value)).collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    /// The regression of issue 13: `STATION_NAME=Main Gate` (unquoted, with
    /// a space) is the whole name, as python-dotenv reads it.
    #[test]
    fn unquoted_value_with_spaces() {
        assert_eq!(values("STATION_NAME=Main Gate\n"), [pair("STATION_NAME", "Main Gate")]);
        assert_eq!(values("STATION_NAME = Main Gate   # the front door\n"), [pair("STATION_NAME", "Main Gate")]);
        assert_eq!(values("ADMIN_PIN=12#4\n"), [pair("ADMIN_PIN", "12#4")]);
    }

    /// A byte-order mark (Windows Notepad) does not break line 1, and CRLF
    /// line ends leave no `\r` in values.
    #[test]
    fn bom_and_crlf() {
        assert_eq!(
            values("\u{feff}STATION_NAME=Gate 1\r\nADMIN_PIN=2468\r\n"),
            [pair("STATION_NAME", "Gate 1"), pair("ADMIN_PIN", "2468")]
        );
    }

    /// `export`, comment lines, blank lines, both quote styles, escapes and
    /// a double-quoted value spanning lines.
    #[test]
    fn export_comments_quotes() {
        let text = "# TrackAttendance\n\nexport CLOUD_API_URL=https://hub.example.com\n\
                    A='it''s'\nB='a \\' b'\nC=\"x\\ny\" # note\nD=\"two\nlines\"\nE=\nexport_NAME=1\n";
        let file = parse(text);
        assert_eq!(file.problems.len(), 1, "{:?}", file.problems);
        assert_eq!(file.problems[0].line, 4, "text after the closing quote");
        let got: Vec<(String, String)> = file.entries.into_iter().map(|e| (e.name, e.value)).collect();
        assert_eq!(
            got,
            [
                pair("CLOUD_API_URL", "https://hub.example.com"),
                pair("B", "a ' b"),
                pair("C", "x\ny"),
                pair("D", "two\nlines"),
                pair("E", ""),
                pair("export_NAME", "1"),
            ]
        );
    }

    /// Lines that cannot be read name their line and the fix, and the lines
    /// after them are still read.
    #[test]
    fn bad_lines_name_the_line_and_the_fix() {
        let file = parse("A=1\nJUST_A_NAME\n=5\nB=\"open\nC=3\n");
        let problems: Vec<String> = file.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems[0], "line 2: JUST_A_NAME has no '=' and no value; write JUST_A_NAME=value, or delete the line");
        assert!(problems[1].starts_with("line 3: no variable name before '='"), "{problems:?}");
        assert!(problems[2].starts_with("line 4: the double quote opened on line 4 is never closed"), "{problems:?}");
        // The unclosed quote skips only its own line.
        assert_eq!(file.entries.iter().map(|e| (e.name.as_str(), e.line)).collect::<Vec<_>>(), [("A", 1), ("C", 5)]);
    }

    /// One Latin-1 byte (a file saved as Windows-1252) is reported as an
    /// encoding problem on its line, not as a permission problem, and the
    /// other lines are read.
    #[test]
    fn non_utf8_line_is_named() {
        let bytes = b"A=1\nSTATION_NAME=Caf\xe9\nB=2\n";
        let file = parse(&decode(bytes));
        assert_eq!(file.problems.len(), 1);
        assert_eq!(file.problems[0].line, 2);
        assert!(file.problems[0].message.contains("not UTF-8"), "{}", file.problems[0].message);
        assert!(file.problems[0].message.contains("save the file as UTF-8"));
        assert_eq!(file.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    }
}
