#![no_main]
//! Any bytes through the reader: Ok or Err, never a panic (see `check_parse`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dicomscrub_fuzz::check_parse(data);
});
