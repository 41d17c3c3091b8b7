//! Small helpers shared by every stage: a cache prefetch hint, the thread
//! pool ([`threads`]) and order statistics ([`stats`]).

pub mod stats;
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
