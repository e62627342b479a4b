#![no_main]
//! Parse, rewrite with a basic-profile-like plan, parse again (see `check_rewrite`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dicomscrub_fuzz::check_rewrite(data);
});
