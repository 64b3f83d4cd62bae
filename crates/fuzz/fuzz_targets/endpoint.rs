//! Fuzz target `endpoint`: see `l2tp_fuzz::harness::endpoint`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    l2tp_fuzz::harness::endpoint(data);
});
