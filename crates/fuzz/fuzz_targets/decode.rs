//! Fuzz target `decode`: see `l2tp_fuzz::harness::decode`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    l2tp_fuzz::harness::decode(data);
});
