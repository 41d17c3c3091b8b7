//! Small helpers shared by every stage: a cache prefetch hint, the thread
//! pool ([`threads`]) and order statistics ([`stats`]).

pub mod stats;
pub mod text;
pub mod threads;

/// Asks the CPU to bring every cache line of `value` in (a hint: nothing
/// is read and nothing changes if it is ignored).
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = std::mem::size_of_val(value);
        let start = (value as *const T).cast::<i8>();
        for offset in (0..bytes)
            .step_by(64)
            .chain(std::iter::once(bytes.saturating_sub(1)))
        {
            // SAFETY: SSE is part of x86-64; a prefetch reads nothing and
            // never faults (the addresses are inside the value anyway).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Reads a whole side file (a model, a truth list, an allowlist) of at most
/// `limit` bytes. A FIFO, device or directory is refused with a message
/// saying so (it could block forever or never end), and so is a larger
/// file; `what` names the file's role in messages.
pub(crate) fn read_side_file(
    path: &std::path::Path,
    what: &str,
    limit: u64,
) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::Read;
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    anyhow::ensure!(
        meta.is_file(),
        "{what} {}: not a regular file (a directory, FIFO or device); give a file",
        path.display()
    );
    anyhow::ensure!(
        meta.len() <= limit,
        "{what} {}: {} bytes, more than the {limit} a {what} may have",
        path.display(),
        meta.len()
    );
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {what} {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= limit,
        "{what} {}: grew past the {limit} bytes a {what} may have while being read",
        path.display()
    );
    Ok(bytes)
}
