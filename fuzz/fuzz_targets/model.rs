//! The model loader on arbitrary bytes: it refuses or loads, never panics,
//! and a loaded model scores rows without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    latmove::model::file::check_load(data);
});
