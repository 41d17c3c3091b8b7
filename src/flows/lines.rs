//! Physical lines and the fields of one line: the record rule every reader
//! path shares (one thread, byte ranges, gzip, a stream).
//!
//! A record is one physical line, ended by a line feed, a carriage return
//! and line feed, or a lone carriage return, so one stray byte can never
//! swallow the rest of a file. Within a line, a field that starts with a
//! quote is quoted (`""` inside stands for one quote) and may hold commas;
//! a quote that is not closed before the line's end makes the row unusable
//! (it is skipped and counted, the next line is read as usual). A line
//! longer than [`MAX_LINE`] bytes stops the read with an error naming it.

use std::io::{self, Read};

/// The longest line latmove reads (1 MiB; a CICFlowMeter row is under 1 KB).
pub const MAX_LINE: usize = 1 << 20;

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The underlying reader failed.
    Io(io::Error),
    /// A line is longer than [`MAX_LINE`].
    TooLong,
}

/// One physical line, without its terminator.
pub(crate) struct Line<'a> {
    /// The line's bytes.
    pub(crate) bytes: &'a [u8],
    /// Whether a line end followed it (false for a last line cut short).
    pub(crate) terminated: bool,
    /// The line was longer than [`MAX_LINE`] and was passed over (only
    /// from a reader that skips long lines; `bytes` is then empty).
    pub(crate) overlong: bool,
}

/// Reads physical lines from `R` with a bounded buffer.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[pos..len]`.
    pos: usize,
    len: usize,
    eof: bool,
    /// The previous line ended with a lone carriage return so far: a line
    /// feed right after it belongs to the same line end.
    skip_feed: bool,
    /// Bytes read from `inner` so far.
    read: u64,
    /// Pass over lines longer than [`MAX_LINE`] instead of failing.
    skip_long: bool,
    /// Passing over the rest of an overlong line.
    discarding: bool,
}

impl<R: Read> LineReader<R> {
    /// A reader of `inner`'s lines.
    pub(crate) fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            buf: vec![0; 1 << 16],
            pos: 0,
            len: 0,
            eof: false,
            skip_feed: false,
            read: 0,
            skip_long: false,
            discarding: false,
        }
    }

    /// A reader that passes over a line longer than [`MAX_LINE`] (giving
    /// it as an empty, overlong line) instead of failing: for a stream,
    /// which must go on.
    pub(crate) fn skipping_long_lines(inner: R) -> LineReader<R> {
        LineReader {
            skip_long: true,
            ..LineReader::new(inner)
        }
    }

    /// Bytes handed out so far, line ends included (a line feed that may
    /// follow a carriage return at the end of what was read is not).
    pub(crate) fn consumed(&self) -> u64 {
        self.read - (self.len - self.pos) as u64
    }

    /// The next line, or `None` at the end of the input.
    pub(crate) fn next_line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        let mut scanned = 0;
        loop {
            if self.skip_feed && self.pos < self.len {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_feed = false;
            }
            let data = &self.buf[self.pos..self.len];
            if let Some(i) =
                memchr::memchr2(b'\n', b'\r', &data[scanned.min(data.len())..]).map(|i| i + scanned)
            {
                let start = self.pos;
                let cr = data[i] == b'\r';
                self.pos += i + 1;
                if cr {
                    // A line feed right after is part of this line end.
                    if self.pos < self.len {
                        if self.buf[self.pos] == b'\n' {
                            self.pos += 1;
                        }
                    } else {
                        self.skip_feed = true;
                    }
                }
                let overlong = std::mem::take(&mut self.discarding);
                return Ok(Some(Line {
                    bytes: if overlong {
                        &[]
                    } else {
                        &self.buf[start..start + i]
                    },
                    terminated: true,
                    overlong,
                }));
            }
            scanned = data.len();
            if scanned > MAX_LINE || (self.discarding && scanned > 0) {
                if !self.skip_long {
                    return Err(LineError::TooLong);
                }
                // Pass over what there is of the line, and look on.
                self.discarding = true;
                self.pos = self.len;
                scanned = 0;
            }
            if self.eof {
                if self.pos == self.len && !self.discarding {
                    return Ok(None);
                }
                let start = self.pos;
                self.pos = self.len;
                let overlong = std::mem::take(&mut self.discarding);
                return Ok(Some(Line {
                    bytes: if overlong {
                        &[]
                    } else {
                        &self.buf[start..self.len]
                    },
                    terminated: false,
                    overlong,
                }));
            }
            self.refill()?;
        }
    }

    /// Moves the unread bytes to the front and reads more after them.
    fn refill(&mut self) -> Result<(), LineError> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            let grown = (self.buf.len() * 2).min(MAX_LINE + 2);
            if grown <= self.len {
                return Err(LineError::TooLong);
            }
            self.buf.resize(grown, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.len += n;
                    self.read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LineError::Io(e)),
            }
        }
    }
}

/// Splits one line into `rec` on commas, honouring quoted fields. `Err`
/// holds the (0-based) field whose quote is not closed on this line and
/// the quote's offset in the line.
pub(crate) fn split_fields(line: &[u8], rec: &mut csv::ByteRecord) -> Result<(), (usize, usize)> {
    rec.clear();
    if memchr::memchr(b'"', line).is_none() {
        for field in line.split(|&b| b == b',') {
            rec.push_field(field);
        }
        return Ok(());
    }
    let mut field = Vec::new();
    let mut i = 0;
    loop {
        field.clear();
        if line.get(i) == Some(&b'"') {
            // Quoted: up to the closing quote, `""` standing for one.
            let open = i;
            i += 1;
            loop {
                match memchr::memchr(b'"', &line[i..]) {
                    None => return Err((rec.len(), open)),
                    Some(q) => {
                        field.extend_from_slice(&line[i..i + q]);
                        i += q + 1;
                        if line.get(i) == Some(&b'"') {
                            field.push(b'"');
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
        }
        // Unquoted (or what follows a closing quote): up to the next comma.
        let end = memchr::memchr(b',', &line[i..]).map_or(line.len(), |c| i + c);
        field.extend_from_slice(&line[i..end]);
        rec.push_field(&field);
        if end == line.len() {
            return Ok(());
        }
        i = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.bytes.to_vec(), l.terminated));
        }
        out
    }

    #[test]
    fn every_line_end_ends_a_line() {
        let want = vec![
            (b"a".to_vec(), true),
            (b"b".to_vec(), true),
            (b"c".to_vec(), true),
            (b"".to_vec(), true),
            (b"d".to_vec(), false),
        ];
        assert_eq!(lines(b"a\nb\r\nc\r\rd"), want);
        assert_eq!(lines(b"a\rb\nc\r\n\nd"), want);
        assert_eq!(lines(b""), Vec::new());
        assert_eq!(lines(b"x\r"), vec![(b"x".to_vec(), true)]);
    }

    #[test]
    fn a_carriage_return_at_a_buffer_edge_keeps_its_line_feed() {
        // Lines whose CR is the last byte of a read, LF the first of the
        // next, through a reader that gives one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut r = LineReader::new(Trickle(b"ab\r\ncd\r\n"));
        let mut got = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            got.push(l.bytes.to_vec());
        }
        assert_eq!(got, vec![b"ab".to_vec(), b"cd".to_vec()]);
    }

    #[test]
    fn a_stream_passes_over_an_overlong_line_and_reads_on() {
        let mut text = b"a\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
        text.extend_from_slice(b"\r\nb\n");
        let mut r = LineReader::skipping_long_lines(&text[..]);
        let mut got = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            got.push((l.bytes.to_vec(), l.overlong));
        }
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), false),
                (Vec::new(), true),
                (b"b".to_vec(), false)
            ]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_an_error() {
        let long = vec![b'0'; MAX_LINE + 10];
        let mut r = LineReader::new(&long[..]);
        assert!(matches!(r.next_line(), Err(LineError::TooLong)));
        let mut ok = vec![b'0'; MAX_LINE - 1];
        ok.push(b'\n');
        let mut r = LineReader::new(&ok[..]);
        assert_eq!(r.next_line().unwrap().unwrap().bytes.len(), MAX_LINE - 1);
    }

    #[test]
    fn quoted_fields_stay_on_their_line() {
        let mut rec = csv::ByteRecord::new();
        split_fields(b"a,\"b,c\",\"d\"\"e\",f", &mut rec).unwrap();
        assert_eq!(rec, csv::ByteRecord::from(vec!["a", "b,c", "d\"e", "f"]));
        split_fields(b"a,b\"c,d", &mut rec).unwrap();
        assert_eq!(rec, csv::ByteRecord::from(vec!["a", "b\"c", "d"]));
        split_fields(b"", &mut rec).unwrap();
        assert_eq!(rec, csv::ByteRecord::from(vec![""]));
        assert_eq!(split_fields(b"a,\"b,c", &mut rec), Err((1, 2)));
        assert_eq!(split_fields(b"\"a", &mut rec), Err((0, 0)));
    }
}
