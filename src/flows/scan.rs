//! Splitting a byte range of flow rows in two passes, without tokenizing
//! what latmove does not read.
//!
//! 1. [`Index::build`] marks, 64 bytes at a time (AVX2 when the CPU has it),
//!    where the range's commas and line feeds are, and checks that it holds
//!    no quote and no carriage return other than one right before a line
//!    feed (true of every CIC file; a range that fails goes through the csv
//!    crate instead).
//! 2. [`Index::locate`] finds, in one line, only the commas around the
//!    fields latmove reads, by counting bits (whole blocks without one are
//!    skipped with a population count), and the line's comma count.
//!
//! [`quick_row`] then parses a row whose cells are all in their plain form
//! (addresses, whole numbers, a timestamp the memo knows how to read);
//! anything else (a short or long row, a space, a sign, a fraction,
//! `Infinity`, a bad cell) is left to the general row check
//! (`handle_row`), so the flows and counts are exactly the csv crate's
//! (tested).

use super::columns::Field;
use super::{FileLayout, Flow, Memo, protocol_number, trim, whole_number};

/// Where a range's commas and line feeds are.
#[derive(Default)]
pub(super) struct Index {
    /// Bit `i` of `commas[b]`: byte `64 b + i` is a comma; one zero block
    /// past the end.
    commas: Vec<u64>,
    /// Offsets of the line feeds, in order.
    pub(super) feeds: Vec<usize>,
}

impl Index {
    /// Indexes `buf`. False when it holds a quote or a carriage return that
    /// is not right before a line feed.
    pub(super) fn build(&mut self, buf: &[u8]) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW (checked just above).
                return unsafe { self.build_avx512(buf) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { self.build_avx2(buf) };
            }
        }
        self.build_with(buf, masks_bytes)
    }

    /// [`Index::build`] with AVX-512BW (a 64-byte block in one register,
    /// each byte looked for straight into a bit mask).
    ///
    /// # Safety
    /// The CPU must support AVX-512BW.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw")]
    unsafe fn build_avx512(&mut self, buf: &[u8]) -> bool {
        // SAFETY: this function runs only where AVX-512BW is available.
        self.build_with(buf, |block| unsafe { masks_avx512(block) })
    }

    /// [`Index::build`] with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn build_avx2(&mut self, buf: &[u8]) -> bool {
        // SAFETY: this function runs only where AVX2 is available.
        self.build_with(buf, |block| unsafe { masks_avx2(block) })
    }

    /// The indexing loop, given how to find a 64-byte block's commas, line
    /// feeds, quotes and carriage returns (as bit masks).
    #[inline(always)]
    fn build_with(&mut self, buf: &[u8], masks: impl Fn(&[u8; 64]) -> [u64; 4]) -> bool {
        self.feeds.clear();
        let blocks = buf.len().div_ceil(64);
        // Every block's entry is written below: only a longer buffer than
        // any before needs new (zeroed) entries, and the one past the end
        // is cleared.
        self.commas.resize(blocks + 1, 0);
        self.commas[blocks] = 0;
        let mut bad = 0u64;
        // A carriage return must be followed by a line feed: one in bit 63
        // is checked against the next block's bit 0.
        let mut cr_at_end = 0u64;
        let mut index = |b: usize, block: &[u8; 64], commas: &mut u64| {
            let [comma, mut feed, quote, cr] = masks(block);
            *commas = comma;
            bad |= quote | (cr & !(feed >> 1) & !(1 << 63)) | (cr_at_end & !feed & 1);
            cr_at_end = cr >> 63;
            while feed != 0 {
                self.feeds.push(b * 64 + feed.trailing_zeros() as usize);
                feed &= feed - 1;
            }
        };
        let mut whole = buf.chunks_exact(64);
        let mut b = 0;
        for (block, commas) in whole.by_ref().zip(self.commas.iter_mut()) {
            index(b, block.try_into().expect("64 bytes"), commas);
            b += 1;
        }
        let rest = whole.remainder();
        if !rest.is_empty() {
            // The last, partial block, padded with zeros (none of the bytes
            // looked for).
            let mut padded = [0u8; 64];
            padded[..rest.len()].copy_from_slice(rest);
            index(b, &padded, &mut self.commas[b]);
        }
        // A carriage return in the very last byte has no line feed after it.
        bad |= cr_at_end;
        bad == 0
    }

    /// In the line `[start, end)` of the indexed buffer, the offsets of the
    /// commas numbered `wanted` (1-based, ascending) into `at`, and the
    /// line's comma count; `None` when the line has fewer commas than the
    /// last one wanted. With `PDEP`, a comma further into a block is picked
    /// with one bit deposit instead of clearing the lower bits one by
    /// one.
    ///
    /// # Safety
    /// With `PDEP`, the CPU must support BMI2.
    #[inline(always)]
    pub(super) unsafe fn locate<const PDEP: bool>(
        &self,
        start: usize,
        end: usize,
        wanted: &[usize],
        at: &mut [usize],
    ) -> Option<usize> {
        let mut b = start / 64;
        let last = end / 64;
        let end_mask = (1u64 << (end % 64)) - 1;
        let clip = |b: usize, m: u64| if b == last { m & end_mask } else { m };
        let mut mask = clip(b, self.commas[b] & (!0u64 << (start % 64)));
        let mut count = 0usize;
        for (&k, slot) in wanted.iter().zip(at.iter_mut()) {
            // The next comma in the block when it is the one wanted (the
            // common case: the wanted commas mostly come in runs).
            if k == count + 1 && mask != 0 {
                *slot = b * 64 + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                count = k;
                continue;
            }
            loop {
                let p = mask.count_ones() as usize;
                if count + p >= k {
                    let skip = k - count - 1;
                    let at = if PDEP {
                        // SAFETY: with PDEP the caller has checked BMI2.
                        unsafe { nth_set_bit_bmi2(mask, skip) }
                    } else {
                        for _ in 0..skip {
                            mask &= mask - 1;
                        }
                        mask.trailing_zeros()
                    };
                    *slot = b * 64 + at as usize;
                    // The bits up to this comma's cleared.
                    mask &= (!1u64) << at;
                    count = k;
                    break;
                }
                if b == last {
                    return None;
                }
                count += p;
                b += 1;
                mask = clip(b, self.commas[b]);
            }
        }
        loop {
            count += mask.count_ones() as usize;
            if b == last {
                return Some(count);
            }
            b += 1;
            mask = clip(b, self.commas[b]);
        }
    }
}

/// The position of `mask`'s set bit number `n` (counting from 0 at the
/// lowest; `mask` has more than `n` set bits): the bit deposit of `1 << n`
/// into `mask` keeps exactly that bit.
///
/// # Safety
/// The CPU must support BMI2.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn nth_set_bit_bmi2(mask: u64, n: usize) -> u32 {
    // SAFETY: the caller has checked BMI2.
    unsafe { std::arch::x86_64::_pdep_u64(1u64 << n, mask) }.trailing_zeros()
}

/// Never called off x86-64 (`PDEP` is false there).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn nth_set_bit_bmi2(_mask: u64, _n: usize) -> u32 {
    unreachable!("BMI2 is an x86-64 extension")
}

/// A block's (commas, line feeds, quotes, carriage returns), a bit a byte.
fn masks_bytes(block: &[u8; 64]) -> [u64; 4] {
    let mut m = [0u64; 4];
    for (i, &byte) in block.iter().enumerate() {
        let k = match byte {
            b',' => 0,
            b'\n' => 1,
            b'"' => 2,
            b'\r' => 3,
            _ => continue,
        };
        m[k] |= 1 << i;
    }
    m
}

/// [`masks_bytes`] with AVX-512BW.
///
/// # Safety
/// The CPU must support AVX-512BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
unsafe fn masks_avx512(block: &[u8; 64]) -> [u64; 4] {
    use std::arch::x86_64::{
        __m512i, _mm512_cmpeq_epi8_mask, _mm512_loadu_si512, _mm512_set1_epi8,
    };
    // SAFETY: the block is 64 bytes; the load is unaligned.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast::<__m512i>()) };
    let bits = |c: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c as i8));
    [bits(b','), bits(b'\n'), bits(b'"'), bits(b'\r')]
}

/// [`masks_bytes`] with AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn masks_avx2(block: &[u8; 64]) -> [u64; 4] {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    // SAFETY: the block is 64 bytes; the loads are unaligned.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(block.as_ptr().cast::<__m256i>()),
            _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>()),
        )
    };
    let bits = |c: u8| {
        let v = _mm256_set1_epi8(c as i8);
        let a = _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, v)) as u32;
        let b = _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, v)) as u32;
        u64::from(a) | (u64::from(b) << 32)
    };
    [bits(b','), bits(b'\n'), bits(b'"'), bits(b'\r')]
}

/// What [`quick_row`] reads in a file's rows.
pub(super) struct RowPlan {
    /// The header's width: a quick row has exactly that many fields.
    width: usize,
    /// The comma numbers to locate (ascending).
    pub(super) wanted: Vec<usize>,
    /// A cell's edges, by [`Field`] (`None`: the file lacks it), as
    /// positions in the row's edge list (see [`quick_row`]): 0 before the
    /// line, `k + 1` the `k`-th wanted comma, `wanted.len() + 1` the
    /// line's end.
    cells: [Option<(usize, usize)>; Field::ALL.len()],
    /// The header's own source-address cell reads as an address: a
    /// repeated header would pass for a row, so every row takes the
    /// general check.
    off: bool,
}

impl RowPlan {
    pub(super) fn new(layout: &FileLayout) -> RowPlan {
        let width = layout.header.len();
        let columns: Vec<Option<usize>> = Field::ALL.iter().map(|f| layout.map.get(*f)).collect();
        let mut wanted: Vec<usize> = columns
            .iter()
            .flatten()
            .flat_map(|&c| [c, c + 1])
            .filter(|&k| k >= 1 && k < width)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let edge = |k: usize| 1 + wanted.binary_search(&k).expect("a wanted comma");
        let mut cells = [None; Field::ALL.len()];
        for (cell, column) in cells.iter_mut().zip(&columns) {
            *cell = column.map(|c| {
                let from = if c == 0 { 0 } else { edge(c) };
                let to = if c + 1 == width {
                    wanted.len() + 1
                } else {
                    edge(c + 1)
                };
                (from, to)
            });
        }
        let off = layout.map.get(Field::SrcIp).is_some_and(|i| {
            layout
                .header
                .get(i)
                .is_some_and(|h| super::parse_ip(trim(h)).is_some())
        });
        assert!(
            wanted.len() + 2 <= EDGES,
            "two edges a field at most, and the line's ends"
        );
        RowPlan {
            width,
            wanted,
            cells,
            off,
        }
    }

    /// Whether rows with `commas` commas can be parsed quickly.
    #[inline]
    pub(super) fn fits(&self, commas: usize) -> bool {
        !self.off && commas + 1 == self.width
    }
}

/// A row's edges (see [`quick_row`]), in a fixed array: every layout's
/// fit (two per field at most, and the line's two ends).
pub(super) type Edges = [usize; EDGES];

/// Room for the edges of every layout.
pub(super) const EDGES: usize = 64;

/// A port in its plain form (one to five digits, at most 65535).
#[inline(always)]
fn plain_port(line: &[u8], edges: &Edges, cell: Option<(usize, usize)>) -> Option<u16> {
    let (from, to) = cell_range(edges, cell)?;
    if to - from > 5 {
        return None;
    }
    u16::try_from(digits_number(line, from, to)?).ok()
}

/// `line[from..to]` as a whole number of one to 15 ASCII digits (what
/// [`whole_number`] gives), read eight bytes at a time: the field's last
/// eight bytes (and the ones before them for a longer field) are loaded as
/// one word, the bytes before the field replaced by `'0'`, all checked to
/// be digits and combined pairwise. A field too near the line's start to
/// load a whole word ending at its end goes through [`whole_number`].
#[inline(always)]
fn digits_number(line: &[u8], from: usize, to: usize) -> Option<u64> {
    let len = to.checked_sub(from)?;
    if len == 0 || len > 15 || to > line.len() {
        return None;
    }
    if to < 16 {
        return whole_number(&line[from..to]);
    }
    if len <= 8 {
        digits_word(line, to, len)
    } else {
        Some(digits_word(line, to - 8, len - 8)? * 100_000_000 + digits_word(line, to, 8)?)
    }
}

/// The `n` (1 to 8) ASCII digits that end at `end` (at least 8) in `line`
/// as a number (see [`digits_number`]).
#[inline(always)]
fn digits_word(line: &[u8], end: usize, n: usize) -> Option<u64> {
    let bytes: [u8; 8] = line[end - 8..end].try_into().expect("eight bytes");
    let x = u64::from_le_bytes(bytes);
    // The field's bytes are the word's high `n` (the last byte is the
    // most significant); the bytes ahead of the field become '0'.
    let keep = !0u64 << (8 * (8 - n));
    let x = (x & keep) | (ZEROS & !keep);
    // Every byte 0x30..=0x39: high nibble 3, and still 3 after adding 6.
    let digits = x & 0xF0F0_F0F0_F0F0_F0F0 == ZEROS
        && (x + 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0 == ZEROS;
    if !digits {
        return None;
    }
    // The first character is the lowest byte: pairs, quads, then all.
    let x = x - ZEROS;
    let x = (x * 10 + (x >> 8)) & 0x00FF_00FF_00FF_00FF;
    let x = (x * 100 + (x >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((x * 10_000 + (x >> 32)) & 0xFFFF_FFFF)
}

/// Eight ASCII zeros.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// The flow of a row whose cells are all in their plain form, or `None`
/// (the general row check then decides, and counts). `line` is the row
/// (without its line end); `edges` holds, relative to the line,
/// `usize::MAX` (the position just ahead of it), the offsets of the commas `plan.wanted`
/// names, and the line's length.
#[inline(always)]
pub(super) fn quick_row<'a>(
    line: &'a [u8],
    edges: &Edges,
    plan: &RowPlan,
    memo: &mut Memo,
) -> Option<Flow<'a>> {
    let src_ip = memo.ip(cell_text(line, edges, plan.cells[Field::SrcIp.index()])?)?;
    let dst_ip = memo.ip(cell_text(line, edges, plan.cells[Field::DstIp.index()])?)?;
    let dst_port = plain_port(line, edges, plan.cells[Field::DstPort.index()])?;
    let src_port = match cell_text(line, edges, plan.cells[Field::SrcPort.index()]) {
        None | Some([]) => None,
        Some(_) => Some(plain_port(line, edges, plan.cells[Field::SrcPort.index()])?),
    };
    let protocol = cell_number(line, edges, plan.cells[Field::Protocol.index()]).ok()?;
    let duration_us = cell_number(line, edges, plan.cells[Field::Duration.index()]).ok()?;
    let fwd_packets = cell_number(line, edges, plan.cells[Field::FwdPackets.index()]).ok()?;
    let bwd_packets = cell_number(line, edges, plan.cells[Field::BwdPackets.index()]).ok()?;
    let fwd_bytes = cell_number(line, edges, plan.cells[Field::FwdBytes.index()]).ok()?;
    let bwd_bytes = cell_number(line, edges, plan.cells[Field::BwdBytes.index()]).ok()?;
    let rst_flags = cell_number(line, edges, plan.cells[Field::RstFlags.index()]).ok()?;
    let timestamp = match cell_text(line, edges, plan.cells[Field::Timestamp.index()]).map(trim) {
        None | Some([]) => None,
        Some(v) => Some(memo.time.parse(v)?),
    };
    Some(Flow {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        protocol: protocol_number(protocol),
        timestamp,
        duration_us,
        fwd_packets,
        bwd_packets,
        fwd_bytes,
        bwd_bytes,
        rst_flags,
        label: cell_text(line, edges, plan.cells[Field::Label.index()])
            .map(trim)
            .filter(|v| !v.is_empty()),
        flow_id: cell_text(line, edges, plan.cells[Field::FlowId.index()])
            .map(trim)
            .filter(|v| !v.is_empty()),
        meta: super::FlowMeta::default(),
    })
}

/// A numeric cell in its plain form: a whole number of at most 15 digits
/// (`None` when the cell is empty or the column absent), or `Err` for
/// anything else (left to the general check).
#[inline(always)]
fn cell_number(
    line: &[u8],
    edges: &Edges,
    cell: Option<(usize, usize)>,
) -> Result<Option<f64>, ()> {
    match cell_range(edges, cell) {
        None => Ok(None),
        Some((from, to)) if from == to => Ok(None),
        Some((from, to)) => digits_number(line, from, to)
            .map(|n| Some(n as f64))
            .ok_or(()),
    }
}

/// Where a cell's text is in the line (see [`quick_row`]), or `None` for a
/// column the file lacks.
#[inline(always)]
fn cell_range(edges: &Edges, cell: Option<(usize, usize)>) -> Option<(usize, usize)> {
    let (from, to) = cell?;
    // The plan's edge numbers are below `EDGES` (`RowPlan::new`): the
    // remainder changes nothing and spares the bounds checks.
    Some((edges[from % EDGES].wrapping_add(1), edges[to % EDGES]))
}

/// The text of a cell between two edges (see [`quick_row`]).
#[inline(always)]
fn cell_text<'a>(line: &'a [u8], edges: &Edges, cell: Option<(usize, usize)>) -> Option<&'a [u8]> {
    let (from, to) = cell_range(edges, cell)?;
    line.get(from..to)
}

/// A line split on every comma, for the general row check.
pub(super) struct SplitRow<'a> {
    line: &'a [u8],
    /// Offsets of the line's commas.
    commas: Vec<usize>,
}

impl<'a> SplitRow<'a> {
    pub(super) fn split(line: &'a [u8], mut commas: Vec<usize>) -> SplitRow<'a> {
        commas.clear();
        commas.extend(memchr::memchr_iter(b',', line));
        SplitRow { line, commas }
    }

    /// The comma buffer back, for the next line.
    pub(super) fn into_buffer(self) -> Vec<usize> {
        self.commas
    }
}

impl super::Row for SplitRow<'_> {
    fn field(&self, i: usize) -> Option<&[u8]> {
        let from = match i {
            0 => 0,
            _ => *self.commas.get(i - 1)? + 1,
        };
        let to = self.commas.get(i).copied().unwrap_or(self.line.len());
        Some(&self.line[from..to])
    }

    fn width(&self) -> usize {
        self.commas.len() + 1
    }

    fn is_blank(&self) -> bool {
        self.line
            .iter()
            .all(|b| *b == b',' || b.is_ascii_whitespace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// The index (AVX-512, AVX2 and byte by byte) and the comma walk agree with a
    /// plain byte loop on texts of every length up to 300 with commas, line
    /// feeds, quotes and carriage returns anywhere, for several sets of
    /// wanted commas.
    #[test]
    fn index_and_walk_agree_with_a_byte_loop() {
        let mut seed = 7u64;
        let wanted_sets: [&[usize]; 5] = [&[], &[1], &[1, 2, 3], &[2, 5, 9, 30], &[1, 40, 84]];
        for len in 0..300usize {
            for round in 0..12u64 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        let r = lcg(&mut seed) % (3 + round % 5);
                        let rare = lcg(&mut seed) % 60;
                        if r == 0 {
                            b','
                        } else if r == 1 && round % 2 == 0 {
                            b'\n'
                        } else if rare == 0 && round % 3 == 0 {
                            b'"'
                        } else if rare == 1 {
                            b'\r'
                        } else if rare == 2 {
                            b'\n'
                        } else {
                            b'a' + (lcg(&mut seed) % 26) as u8
                        }
                    })
                    .collect();
                let feeds: Vec<usize> = (0..len).filter(|&i| text[i] == b'\n').collect();
                let good = (0..len).all(|i| match text[i] {
                    b'"' => false,
                    b'\r' => text.get(i + 1) == Some(&b'\n'),
                    _ => true,
                });
                let mut builds = vec![
                    {
                        let mut ix = Index::default();
                        let ok = ix.build_with(&text, masks_bytes);
                        (ix, ok)
                    },
                    {
                        // Reused after a longer buffer of commas: no stale
                        // bit may survive.
                        let mut ix = Index::default();
                        ix.build_with(&[b','; 700], masks_bytes);
                        let ok = ix.build_with(&text, masks_bytes);
                        (ix, ok)
                    },
                ];
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut ix = Index::default();
                    // SAFETY: AVX2 checked just above.
                    let ok = unsafe { ix.build_avx2(&text) };
                    builds.push((ix, ok));
                }
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx512bw") {
                    let mut ix = Index::default();
                    // SAFETY: AVX-512BW checked just above.
                    let ok = unsafe { ix.build_avx512(&text) };
                    builds.push((ix, ok));
                }
                for (ix, ok) in &builds {
                    assert_eq!(*ok, good, "{text:?}");
                    assert_eq!(ix.feeds, feeds, "{text:?}");
                    // Every line, and a few spans that start mid-line.
                    let mut starts: Vec<usize> = std::iter::once(0)
                        .chain(feeds.iter().map(|f| f + 1))
                        .collect();
                    starts.extend((0..len).step_by(37));
                    for &s in &starts {
                        let e = text[s.min(len)..]
                            .iter()
                            .position(|b| *b == b'\n')
                            .map_or(len, |p| s + p);
                        let s = s.min(e);
                        let positions: Vec<usize> = (s..e).filter(|&i| text[i] == b',').collect();
                        for wanted in wanted_sets {
                            let mut at = vec![usize::MAX; wanted.len()];
                            // SAFETY: without PDEP, no extension is used.
                            let got = unsafe { ix.locate::<false>(s, e, wanted, &mut at) };
                            #[cfg(target_arch = "x86_64")]
                            if std::arch::is_x86_feature_detected!("bmi2") {
                                let mut at2 = vec![usize::MAX; wanted.len()];
                                // SAFETY: BMI2 checked just above.
                                let got2 = unsafe { ix.locate::<true>(s, e, wanted, &mut at2) };
                                assert_eq!((got, &at), (got2, &at2), "{text:?} {s}..{e}");
                            }
                            let fits = wanted.last().is_none_or(|&k| k <= positions.len());
                            if !fits {
                                assert_eq!(got, None, "{text:?} {s}..{e} {wanted:?}");
                                continue;
                            }
                            assert_eq!(got, Some(positions.len()), "{text:?} {s}..{e}");
                            for (k, a) in wanted.iter().zip(&at) {
                                assert_eq!(*a, positions[k - 1], "{text:?} {s}..{e} comma {k}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn word_digits_read_what_the_byte_loop_reads() {
        let mut seed = 11u64;
        let alphabet = b"0123456789/:;., -+e\x00\xff";
        for round in 0..200_000u64 {
            let len = (lcg(&mut seed) % 40) as usize;
            let mut line: Vec<u8> = (0..len)
                .map(|_| {
                    if round % 3 == 0 {
                        alphabet[(lcg(&mut seed) % alphabet.len() as u64) as usize]
                    } else {
                        b'0' + (lcg(&mut seed) % 10) as u8
                    }
                })
                .collect();
            let from = (lcg(&mut seed) as usize) % (len + 1);
            let to = from + (lcg(&mut seed) as usize) % (len - from + 1);
            if round % 5 == 0 && to > from {
                // One stray byte somewhere in the field.
                let at = from + (lcg(&mut seed) as usize) % (to - from);
                line[at] = alphabet[10 + (lcg(&mut seed) % 10) as usize];
            }
            assert_eq!(
                digits_number(&line, from, to),
                whole_number(&line[from..to]),
                "{:?} {from}..{to}",
                String::from_utf8_lossy(&line)
            );
        }
    }
}
