//! The reader on arbitrary bytes: it never panics, and the byte-range path
//! (several threads, tiny ranges) gives exactly what one thread gives:
//! the same flows, labels, counts and errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    latmove::flows::check::one_thread_equals_ranges(data, 64);
});
