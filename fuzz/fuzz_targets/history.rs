//! The history loader (`--history DIR`) on arbitrary bytes: it refuses or
//! loads, never panics, and a loaded history judges, learns and saves
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    latmove::history::check_load(data);
});
